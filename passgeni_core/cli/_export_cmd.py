"""``passgeni export in-toto CERT_ID|@cert.jwt --out FILE``: a certificate as an
in-toto attestation (a Statement v1 in a DSSE envelope) for supply-chain tooling.

The CLI holds no key of the authority, so the authority is the only signer: the
command verifies the certificate against the JWKS, fetches the authority's
envelope (``GET /api/certificates/{id}/attestation``), verifies its signature
against the same JWKS and checks that its statement is exactly the one the
certificate implies, and only then writes it. ``--jwks FILE`` pins the keys
trusted for both checks instead of the authority's published JWKS.
"""

from __future__ import annotations

import argparse
import json
import sys

from .._errors import InvalidRequest, InvalidToken, MalformedToken
from ..client import connect
from ..crypto import unverified_payload, verify_certificate
from ._options import (
    add_connection_options,
    authority_config,
    jwks_from_file,
    looks_like_token,
    read_token,
)
from ._output import print_json, write_output

__all__ = ["register"]


def unverified_id(token: str) -> str:
    """The ``jti`` of a token, to look its record up (the token is verified after)."""
    jti = unverified_payload(token).get("jti")
    if not isinstance(jti, str) or not jti:
        raise MalformedToken("the certificate token carries no 'jti'")
    return jti


def _cmd_export_in_toto(args: argparse.Namespace) -> int:
    from ..crypto import verify_attestation

    raw = read_token(args.certificate)
    if not raw:
        raise InvalidRequest("give a certificate id or @FILE holding its token")
    with connect(authority_config(args).require_authority()) as client:
        issuer = args.issuer or client.issuer
        jwks = jwks_from_file(args.jwks) if args.jwks else client.jwks()
        token = raw if looks_like_token(raw) else None
        record = client.get_certificate(raw if token is None else unverified_id(raw))
        cert = verify_certificate(token or record.token, jwks, issuer=issuer)
        if record.cert_id != cert.cert_id or record.token.strip() != cert.token:
            raise InvalidToken(
                f"the authority's record {record.cert_id} is not certificate {cert.cert_id}"
            )
        text = client.get_attestation(cert.cert_id)
    attestation = verify_attestation(text, jwks, certificate=cert, cert_url=record.cert_url)
    data = (
        json.dumps(attestation.envelope, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode("utf-8")
    write_output(args.out, data)
    summary = {
        "cert_id": cert.cert_id,
        "cert_url": attestation.cert_url,
        "keyid": attestation.keyid,
        "predicate_type": attestation.statement["predicateType"],
        "subject": attestation.statement["subject"][0]["name"],
        "out": args.out,
    }
    if args.json:
        print_json(summary)
    elif args.out not in (None, "-"):
        print(
            f"wrote the in-toto attestation of {cert.cert_id} (DSSE, key {attestation.keyid}, "
            f"{len(data)} bytes) to {args.out}",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="export a certificate for other tools: in-toto (a DSSE envelope)",
    )
    esub = p.add_subparsers(dest="export_format", metavar="in-toto")
    esub.required = True
    t = esub.add_parser(
        "in-toto",
        help="the authority's signed in-toto attestation of a certificate, checked, to a file",
        description=(
            "Verifies the certificate, fetches the authority's DSSE envelope of its in-toto "
            "statement, verifies the envelope against the same keys and checks the statement "
            "is the certificate's, then writes it (docs/in-toto.md)."
        ),
    )
    t.add_argument(
        "certificate",
        metavar="CERT_ID|@cert.jwt",
        help="a certificate id, a token, @FILE holding one, or '-' for stdin",
    )
    t.add_argument("--out", metavar="FILE", help="write the envelope here (default: stdout)")
    t.add_argument(
        "--jwks",
        metavar="FILE",
        help="trust only these keys (default: the authority's published JWKS)",
    )
    t.add_argument(
        "--issuer", help="expected issuer (default: $PASSGENI_ISSUER, the configured URL)"
    )
    t.add_argument("--json", action="store_true", help="a machine-readable summary on stdout")
    add_connection_options(t)
    t.set_defaults(handler=_cmd_export_in_toto)
