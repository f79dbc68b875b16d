"""Commands that talk to an authority: ``provision``, ``verify``, ``revoke``, ``audit``.

The authority is configured by ``--url``/``--api-key``/``--timeout``, else
``PASSGENI_URL``/``PASSGENI_API_KEY``/``PASSGENI_TIMEOUT``, else the config
file, in that order; ``--embedded`` (or the URL ``embedded``) runs a throwaway
one in-process (``passgeni[authority]``). With none, these commands refuse
(``authority_not_configured``, exit 2) before anything is certified or written.
``verify TOKEN --jwks FILE`` needs no authority: it is offline, always.

Where the password goes: it exists only in this process. Without
``--store``, ``--credential-file`` or ``--show-password`` it is discarded
once certified, and the command says so (useful as a smoke test of
the authority; revoke the certificate afterwards). To keep the credential:

* ``--store URI`` (added by ``_stores_cmds``) certifies, then writes the
  credential and the certificate to a secrets manager: the normal case;
* ``--credential-file FILE`` writes password, binding key and certificate as
  JSON to a new file with mode 0600 (refuses to overwrite): nothing secret
  reaches the terminal, shell history or CI logs;
* ``--show-password`` prints it: alone on stdout in text mode (so
  ``PW=$(passgeni provision ... --show-password)`` works, facts on stderr),
  or as ``password``/``binding_key`` fields with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .._errors import CertificateRevoked, InvalidRequest, InvalidToken, MalformedToken
from ..client import AuthorityClient, CertificateRecord, ClientConfig, connect
from ..crypto import (
    JWKS,
    Certificate,
    encode_binding_key,
    verify_certificate,
    verify_certificate_at_issuance,
)
from ..model import EMBEDDED_ISSUER_NOTE, detect_entropy_source
from ..workflows import ProvisionResult, provision
from ._basic import certificate_summary
from ._options import (
    add_connection_options,
    add_parameter_options,
    authority_config,
    check_status_list_file,
    parameters_from_args,
    read_token,
)
from ._output import print_json, print_kv, print_table, warn_if_embedded

__all__ = ["cmd_verify", "register", "register_verify_options"]


def _config(args: argparse.Namespace) -> ClientConfig:
    return authority_config(args).require_authority()


# --- provision ----------------------------------------------------------------------------


def _target_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.target_system is None and args.target_path is None:
        if args.target_version is not None:
            raise InvalidRequest("--target-version needs --target-system and --target-path")
        return None
    if not args.target_system or not args.target_path:
        raise InvalidRequest("--target-system and --target-path go together")
    target: dict[str, Any] = {"system": args.target_system, "path": args.target_path}
    if args.target_version is not None:
        target["version"] = args.target_version
    return target


def _open_credential_file(path: str) -> int:
    try:
        # O_EXCL: never overwrite (or follow a planted symlink to) an existing file.
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidRequest(f"credential file {path!r} already exists; not overwriting") from None
    except OSError as exc:
        raise InvalidRequest(f"cannot create credential file {path!r}: {exc.strerror}") from None


def _secret_dict(result: ProvisionResult) -> dict[str, Any]:
    return {
        "password": result.credential.password,
        "binding_key": encode_binding_key(result.credential.binding_key),
    }


def _cmd_provision(args: argparse.Namespace) -> int:
    params = parameters_from_args(args)
    target = _target_from_args(args)
    config = _config(args)  # no authority: refuse before any file is created
    # Create the file before anything is certified: a bad path must not cost a certificate.
    fd = _open_credential_file(args.credential_file) if args.credential_file else None
    try:
        with connect(config) as client:
            warn_if_embedded(client.issuer)
            result = provision(
                client,
                args.preset,
                parameters=params,
                target=target,
                label=args.label,
                entropy_source=detect_entropy_source(),
            )
        if fd is not None:
            payload = {**_secret_dict(result), **result.public_dict()}
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fd = None
                json.dump(payload, fh, indent=2)
                fh.write("\n")
    finally:
        if fd is not None:
            os.close(fd)
            if args.credential_file:
                # Nothing was written: leave no empty file behind.
                Path(args.credential_file).unlink(missing_ok=True)
    public = result.public_dict()
    if args.json:
        out = {**(_secret_dict(result) if args.show_password else {}), **public}
        if args.credential_file:
            out["credential_file"] = args.credential_file
        print_json(out)
    elif args.show_password:
        print(result.credential.password)
        _print_facts(public, stream=sys.stderr)
    else:
        _print_facts(public, stream=sys.stdout)
    if not args.show_password and not args.credential_file:
        print(
            f"passgeni: note: the password was not shown or stored, so nobody holds the "
            f"certified credential; use --store URI, --credential-file FILE or --show-password "
            f"to keep it "
            f"(`passgeni revoke {result.cert_id} --reason unused` to retire this one)",
            file=sys.stderr,
        )
    return 0


def _print_facts(public: dict[str, Any], *, stream: Any) -> None:
    rows = [
        ("cert id", public["cert_id"]),
        ("cert url", public["cert_url"]),
        ("standard", public["compliance_standard"]),
        ("standards met", ", ".join(public["standards_met"])),
        ("entropy", f"{public['entropy_bits']} bits"),
        ("issued", public["issued_at"]),
        ("expires", public["expires_at"]),
        ("commitment", public["credential_commitment"]),
    ]
    if public.get("label"):
        rows.append(("label", public["label"]))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}", file=stream)


# --- verify -----------------------------------------------------------------------------------


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


#: A compact JWS: three base64url segments (the signature may not be empty
#: for ES256, but that is the verifier's to say, with its own error).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _looks_like_token(value: str) -> bool:
    return _COMPACT_JWS.fullmatch(value) is not None


def _jwks_from_file(path: str) -> JWKS:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read JWKS file {path!r}: {exc.strerror}") from None
    return JWKS.from_dict(text)


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
    if not _looks_like_token(raw):
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
    jwks = _jwks_from_file(args.jwks)
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
    elif (split := None if _looks_like_token(raw) else _split_cert_url(raw)) is not None:
        # The URL names its authority; the issuer must then be that same base URL.
        base, cert_id = split
        issuer = args.issuer or base
        with AuthorityClient(base, timeout=args.timeout or 10.0, issuer=issuer) as client:
            record = client.get_certificate(cert_id)
            jwks = client.jwks()
        cert = _verify(record.token, jwks, issuer, args.at_issuance)
        if cert.cert_id != cert_id:
            raise InvalidToken(f"the authority returned certificate {cert.cert_id}, not {cert_id}")
    else:
        with connect(_config(args)) as client:
            issuer = client.issuer
            jwks = client.jwks()
            if _looks_like_token(raw):
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
            ("issued", summary["issued_at"]),
            ("expires", summary["expires_at"]),
            ("bound to credential", "yes" if summary["credential_commitment"] else "no"),
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


# --- revoke / audit -----------------------------------------------------------------------------


def _cmd_revoke(args: argparse.Namespace) -> int:
    with connect(_config(args)) as client:
        record = client.revoke(args.cert_id, args.reason)
    if args.json:
        print_json(record.to_dict())
        return 0
    print_kv(
        [
            ("cert id", record.cert_id),
            ("status", record.status),
            ("revoked at", record.to_dict()["revoked_at"]),
            ("reason", record.revocation_reason),
        ]
    )
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    with connect(_config(args)) as client:
        page = client.audit(
            standard=args.standard,
            status=args.status,
            since=args.since,
            until=args.until,
            page=args.page,
            page_size=args.page_size,
        )
    if args.json:
        print_json(page.to_dict())
        return 0
    print_table(
        ["CERT ID", "STATUS", "STANDARD", "ENTROPY", "ISSUED", "EXPIRES", "LABEL"],
        [
            (
                r.cert_id,
                r.status,
                r.compliance_standard,
                r.entropy_bits,
                r.to_dict()["issued_at"],
                r.to_dict()["expires_at"],
                r.label or "",
            )
            for r in page.items
        ],
    )
    print(f"\npage {page.page} of {max(1, -(-page.total // page.page_size))} ({page.total} total)")
    for a in page.anomalies:
        print(
            f"anomaly: user {a.user} generated {a.count_24h} certificates in 24 h "
            f"(detected {a.to_dict()['detected_at']})"
        )
    return 0


def _iso_arg(value: str) -> str:
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date/time: {value[:40]!r}") from None
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="verify a certificate: offline by JWKS; by URL or id from the authority",
        description=(
            "TOKEN with --jwks FILE: fully offline (never the network, never any state; "
            "anything but a compact JWS is malformed_token). TOKEN alone: the JWKS is fetched "
            "from the configured authority. CERT_URL or CERT_ID: the record and JWKS are "
            "fetched from the authority and a revoked certificate fails. --online adds the "
            "revocation status to a TOKEN."
        ),
    )
    register_verify_options(p)

    p = sub.add_parser(
        "provision",
        help="generate a password locally and certify it with the authority",
        description=(
            "Generate a password locally, certify it (only public parameters and an HMAC "
            "commitment are sent) and verify the certificate. The password is printed only "
            "with --show-password (alone on stdout, or with the binding key in --json), or "
            "written with the binding key and certificate to a new 0600 file with "
            "--credential-file (preferred: nothing secret reaches the terminal or logs). "
            "With neither, the password is discarded after certification."
        ),
    )
    add_parameter_options(p)
    p.add_argument("--label", help="a label for the certificate (at most 200 characters)")
    p.add_argument("--target-system", metavar="SYSTEM", help="where the credential is stored")
    p.add_argument("--target-path", metavar="PATH", help="its path in that system")
    p.add_argument("--target-version", metavar="VERSION", help="its version in that system")
    p.add_argument(
        "--show-password",
        action="store_true",
        help="print the password (and, with --json, the binding key)",
    )
    p.add_argument(
        "--credential-file",
        metavar="FILE",
        help="write password, binding key and certificate to a new 0600 JSON file",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_provision)

    p = sub.add_parser("revoke", help="revoke a certificate (the record stays, status changes)")
    p.add_argument("cert_id", metavar="CERT_ID")
    p.add_argument("--reason", required=True, help="why (1-500 characters; shown publicly)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_revoke)

    p = sub.add_parser("audit", help="list your certificates (team-wide for team keys)")
    p.add_argument("--standard", help="only this compliance standard")
    p.add_argument("--status", choices=["valid", "expired", "revoked"])
    p.add_argument("--since", type=_iso_arg, metavar="ISO8601", help="issued at or after")
    p.add_argument("--until", type=_iso_arg, metavar="ISO8601", help="issued before")
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--page-size", type=int, default=50, metavar="N", help="at most 500")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_audit)
