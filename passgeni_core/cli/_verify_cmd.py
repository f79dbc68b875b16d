"""``passgeni verify TOKEN|CERT_URL|CERT_ID``: a certificate checked online or offline.

With ``--jwks FILE`` the check is offline only (no network, no state written); a
certificate URL names its authority, whose base URL must then be the issuer.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .._errors import CertificateRevoked, InvalidRequest, InvalidToken, MalformedToken
from ..audit import source_statements
from ..client import connect  # the configuration only: the HTTP client loads when online
from ..crypto import (
    JWKS,
    Certificate,
    verify_certificate,
    verify_certificate_at_issuance,
)
from ..model import EMBEDDED_ISSUER_NOTE
from ._basic import certificate_summary
from ._options import (
    add_connection_options,
    authority_config,
    check_status_list_file,
    jwks_from_file,
    looks_like_token,
    read_token,
)
from ._output import print_json, print_kv

if TYPE_CHECKING:
    from ..client import CertificateRecord

__all__ = ["cmd_verify", "register_verify_options"]


def _proof_row(summary: dict[str, Any]) -> str:
    """What the certificate can prove about the stored value (``passgeni prove`` checks it)."""
    if summary.get("generation"):
        return f"generation ({summary['generation']['generator']}): provable with the seed"
    if summary.get("credential_commitment"):
        return "binding only: the value is provable, how it was generated is not"
    return "none"


def _source_rows(cert: Certificate) -> list[tuple[str, str]]:
    """Who vouches for the entropy source and the FIPS 140-3 claim."""
    said = source_statements(cert.claims)
    rows = [
        ("entropy source", said.declared),
        ("observed", said.observed),
        ("FIPS 140-3", said.fips),
    ]
    if said.problem:
        rows.append(("warning", f"the FIPS 140-3 claim goes beyond its rule: {said.problem}"))
    return rows


def _split_cert_url(value: str) -> tuple[str, str] | None:
    """``https://host[/prefix]/cert/{id}`` -> (base URL, id); None if not a cert URL."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    path = parts.path.rstrip("/")
    for marker in ("/cert/", "/api/certificates/"):
        head, sep, tail = path.rpartition(marker)
        if sep and tail and "/" not in tail:
            return f"{parts.scheme}://{parts.netloc}{head}", unquote(tail)
    raise InvalidRequest(
        f"{value[:100]!r} is not a certificate URL (expected .../cert/ID or .../api/certificates/ID)"
    )


def _verify(token: str, jwks: JWKS, issuer: str, at_issuance: bool) -> Certificate:
    if at_issuance:
        return verify_certificate_at_issuance(token, jwks, issuer=issuer)
    return verify_certificate(token, jwks, issuer=issuer)


def _check_record(record: CertificateRecord, cert: Certificate, at_issuance: bool) -> None:
    if record.cert_id != cert.cert_id or record.token.strip() != cert.token:
        raise InvalidToken(
            f"the authority's record {record.cert_id} does not match certificate {cert.cert_id}"
        )
    if record.revoked and not at_issuance:
        when = record.revoked_at.isoformat() if record.revoked_at else "an unknown time"
        raise CertificateRevoked(
            f"certificate {cert.cert_id} was revoked at {when}: {record.revocation_reason or 'no reason given'}"
        )


def _verify_offline(raw: str, args: argparse.Namespace) -> tuple[Certificate, JWKS, str]:
    """``verify TOKEN --jwks FILE``: no network, no authority, nothing written.

    Raises:
        MalformedToken: ``raw`` is not a compact JWS (an id or URL is not looked up).
        InvalidRequest: ``--online`` (it would ask the authority), or no expected issuer.
    """
    if args.online:
        raise InvalidRequest(
            "--online asks the authority, --jwks verifies offline: drop one "
            "(offline revocation: --status-list FILE)"
        )
    if not looks_like_token(raw):
        raise MalformedToken(
            "with --jwks, verify checks a certificate token offline, and this is not one "
            "(a compact JWS: three base64url segments); a certificate id or URL needs the "
            "authority: drop --jwks"
        )
    config = authority_config(args)  # only for the expected issuer: nothing is contacted
    expected = config.issuer or config.url
    if not expected:
        raise InvalidRequest(
            "give the expected issuer with --issuer (or set PASSGENI_ISSUER or PASSGENI_URL)"
        )
    jwks = jwks_from_file(args.jwks)
    return _verify(raw, jwks, expected, args.at_issuance), jwks, expected


def cmd_verify(args: argparse.Namespace) -> int:
    """``passgeni verify TOKEN|CERT_URL|CERT_ID``."""
    raw = read_token(args.token)
    if not raw:
        raise InvalidRequest("nothing to verify: give a token, a certificate URL or an id")
    record: CertificateRecord | None = None
    cert: Certificate
    jwks: JWKS
    issuer: str
    if args.jwks:
        # Offline, always: a pinned JWKS means no network and no state, whatever the input.
        cert, jwks, issuer = _verify_offline(raw, args)
    elif (split := None if looks_like_token(raw) else _split_cert_url(raw)) is not None:
        # The URL names its authority; the issuer must then be that same base URL.
        base, cert_id = split
        issuer = args.issuer or base
        from ..client import AuthorityClient

        with AuthorityClient(base, timeout=args.timeout or 10.0, issuer=issuer) as client:
            record = client.get_certificate(cert_id)
            jwks = client.jwks()
        cert = _verify(record.token, jwks, issuer, args.at_issuance)
        if cert.cert_id != cert_id:
            raise InvalidToken(f"the authority returned certificate {cert.cert_id}, not {cert_id}")
    else:
        with connect(authority_config(args).require_authority()) as client:
            issuer = client.issuer
            jwks = client.jwks()
            if looks_like_token(raw):
                cert = _verify(raw, jwks, client.issuer, args.at_issuance)
                if args.online:
                    record = client.get_certificate(cert.cert_id)
            else:
                record = client.get_certificate(raw)
                cert = _verify(record.token, jwks, client.issuer, args.at_issuance)
                if cert.cert_id != record.cert_id or record.cert_id != raw:
                    raise InvalidToken(
                        f"the authority returned certificate {cert.cert_id}, not {raw}"
                    )
    if record is not None:
        _check_record(record, cert, args.at_issuance)
    status_list = None
    if args.status_list:
        # Offline revocation against a cached signed list (raises CertificateRevoked).
        status_list = check_status_list_file(args.status_list, cert, jwks, issuer)
    summary = certificate_summary(cert)
    summary["status"] = record.status if record else None
    summary["checked_online"] = record is not None
    if record is not None:
        summary["revoked_at"] = record.to_dict()["revoked_at"]
        summary["revocation_reason"] = record.revocation_reason
    if status_list is not None:
        summary["status_list"] = {
            "uri": status_list.uri,
            "issued_at": status_list.issued_at.isoformat() if status_list.issued_at else None,
            "revoked": False,
        }
    if args.json:
        print_json(summary)
        return 0
    status = "VALID (as of issuance)" if cert.historical else "VALID"
    if record is not None:
        status += f"; authority status: {record.status}"
    elif status_list is not None:
        when = status_list.issued_at.isoformat() if status_list.issued_at else "?"
        status += f"; not revoked per status list of {when}"
    else:
        status += " (offline: revocation not checked; add --online)"
    print_kv(
        [
            ("status", status),
            ("cert id", summary["cert_id"]),
            (
                "issuer",
                f"{summary['issuer']} ({EMBEDDED_ISSUER_NOTE})"
                if summary["embedded_issuer"]
                else summary["issuer"],
            ),
            ("standard", summary["compliance_standard"]),
            ("standards met", ", ".join(summary["standards_met"])),
            ("entropy", f"{summary['entropy_bits']} bits"),
            *_source_rows(cert),
            ("issued", summary["issued_at"]),
            ("expires", summary["expires_at"]),
            ("proof", _proof_row(summary)),
        ]
    )
    return 0


def register_verify_options(p: argparse.ArgumentParser) -> None:
    """The options of ``passgeni verify``."""
    p.add_argument(
        "token",
        metavar="TOKEN|CERT_URL|CERT_ID",
        help="a certificate JWT ('-' for stdin, @FILE), its https://.../cert/ID URL, or its id",
    )
    p.add_argument(
        "--jwks",
        metavar="FILE",
        help="verify a TOKEN offline against this jwks.json: no network, no authority, "
        "nothing written (an id or URL is refused as malformed_token); default: fetch the JWKS",
    )
    p.add_argument(
        "--issuer",
        help="expected issuer (default: the URL's authority, $PASSGENI_ISSUER, the configured URL)",
    )
    p.add_argument(
        "--online",
        action="store_true",
        help="also ask the authority for the revocation status (exit 1 if revoked)",
    )
    p.add_argument(
        "--status-list",
        metavar="FILE",
        help="check revocation offline against cached signed status lists "
        "(`passgeni status-list fetch --out FILE`; exit 1 if revoked)",
    )
    p.add_argument(
        "--at-issuance",
        action="store_true",
        help="historical audit: check validity as of the certificate's issuance, not now",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(p)
    p.set_defaults(handler=cmd_verify)
