"""``passgeni provenance CERT_ID|@cert.jwt [--format md|html|pdf] [--out FILE]``.

The per-certificate provenance record an auditor files (``passgeni_core.audit.provenance_record``).
The certificate is judged first by the one judge: offline with ``--jwks FILE`` (a token only,
no network, nothing written; ``--status-list FILE`` for revocation), or online against the
configured authority (its record, its revocation). A certificate that does not verify gets no
record (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._errors import InvalidRequest, MalformedToken
from ..client import connect
from ..crypto import JWKS, StatusList, unverified_payload, verify_status_list
from ._options import (
    add_connection_options,
    authority_config,
    jwks_from_file,
    looks_like_token,
    read_status_list_file,
    read_token,
)
from ._output import write_output

__all__ = ["register"]

_FORMATS = ("md", "html", "pdf")


def _format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
    fmt = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
    return fmt if fmt in _FORMATS else "md"


def _status_list(path: str, token: str, jwks: JWKS, issuer: str) -> StatusList:
    """The verified list of ``path`` the certificate points at (its judge checks the bit)."""
    status = unverified_payload(token).get("status")
    ref = status.get("status_list") if isinstance(status, dict) else None
    uri = ref.get("uri") if isinstance(ref, dict) else None
    if not isinstance(uri, str):
        raise InvalidRequest("the certificate carries no status list reference: drop --status-list")
    for candidate in read_status_list_file(path):
        try:
            sub = unverified_payload(candidate).get("sub")
        except MalformedToken:
            continue
        if sub == uri:
            return verify_status_list(candidate, jwks, issuer=issuer, uri=uri)
    raise InvalidRequest(f"{path!r} has no status list {uri!r}; refresh it")


def _cmd_provenance(args: argparse.Namespace) -> int:
    from ..audit import provenance_record

    fmt = _format(args)
    if fmt == "pdf" and args.out in (None, "-") and sys.stdout.isatty():
        raise InvalidRequest("a PDF is binary: give --out FILE (or redirect stdout)")
    raw = read_token(args.certificate)
    if not raw:
        raise InvalidRequest("give a certificate id or @FILE holding its token")
    token_given = looks_like_token(raw)
    if args.jwks:
        if not token_given:
            raise MalformedToken(
                "with --jwks, provenance reads a certificate token offline (@FILE), and this is "
                "not one; a certificate id needs the authority: drop --jwks"
            )
        config = authority_config(args)  # only for the expected issuer: nothing is contacted
        issuer = config.issuer or config.url
        if not issuer:
            raise InvalidRequest("give the expected issuer with --issuer (or set PASSGENI_ISSUER)")
        jwks = jwks_from_file(args.jwks)
        listed = _status_list(args.status_list, raw, jwks, issuer) if args.status_list else None
        record = provenance_record(None, token=raw, jwks=jwks, issuer=issuer, status_list=listed)
    else:
        if args.status_list:
            raise InvalidRequest("--status-list is for offline records: add --jwks FILE")
        with connect(authority_config(args).require_authority()) as client:
            if token_given:
                record = provenance_record(client, token=raw, issuer=args.issuer)
            else:
                record = provenance_record(client, cert_id=raw, issuer=args.issuer)
    data = record.render(fmt)
    write_output(args.out, data, binary_ok=fmt == "pdf")
    if args.out not in (None, "-"):
        print(
            f"wrote {fmt} provenance record of {record.claims.jti} ({record.verdict.status}, "
            f"{len(data)} bytes) to {args.out}",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "provenance",
        help="write a certificate's provenance record for an auditor (md, html, pdf)",
        description=(
            "Verifies the certificate, then writes what was generated, the standards met with "
            "citations and honesty notes, the generator and randomness contributions, what the "
            "authority observed, what the client declared, and how to re-verify it offline."
        ),
    )
    p.add_argument(
        "certificate",
        metavar="CERT_ID|@cert.jwt",
        help="a certificate id (asks the authority), a token, @FILE holding one, or '-' for stdin",
    )
    p.add_argument("--format", choices=_FORMATS, help="default: from --out's suffix, else md")
    p.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "--jwks",
        metavar="FILE",
        help="judge the token offline against this jwks.json: no network, nothing written",
    )
    p.add_argument(
        "--issuer", help="expected issuer (default: $PASSGENI_ISSUER, the configured URL)"
    )
    p.add_argument(
        "--status-list",
        metavar="FILE",
        help="with --jwks: check revocation against cached signed status lists",
    )
    add_connection_options(p)
    p.set_defaults(handler=_cmd_provenance)
