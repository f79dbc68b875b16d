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
* ``--credential-file FILE`` writes password, generation seed and certificate as
  JSON to a new file with mode 0600 (refuses to overwrite): nothing secret
  reaches the terminal, shell history or CI logs;
* ``--show-password`` prints it: alone on stdout in text mode (so
  ``PW=$(passgeni provision ... --show-password)`` works, facts on stderr),
  or as ``password``/``seed`` fields with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InvalidRequest
from ..client import ClientConfig, connect  # the configuration only: the HTTP client loads later
from ..crypto import encode_seed
from ..model import detect_entropy_source
from ._options import (
    add_connection_options,
    add_parameter_options,
    authority_config,
    parameters_from_args,
)
from ._output import print_json, print_kv, print_table, warn_if_embedded
from ._verify_cmd import register_verify_options

if TYPE_CHECKING:
    from ..workflows import ProvisionResult

__all__ = ["register"]


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
        "seed": encode_seed(result.credential.seed) if result.credential.seed else None,
    }


def _cmd_provision(args: argparse.Namespace) -> int:
    # Here, not at the top: this module also registers `verify`, whose offline
    # check must not load the workflows (and through them the HTTP client).
    from ..workflows import provision

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


def _generation_row(generation: dict[str, Any] | None) -> str:
    if not generation:
        return "none (binding only)"
    return f"{generation['generator']}, seed commitment {generation['seed_commitment']}"


def _print_facts(public: dict[str, Any], *, stream: Any) -> None:
    rows = [
        ("cert id", public["cert_id"]),
        ("cert url", public["cert_url"]),
        ("standard", public["compliance_standard"]),
        ("standards met", ", ".join(public["standards_met"])),
        ("entropy", f"{public['entropy_bits']} bits"),
        ("issued", public["issued_at"]),
        ("expires", public["expires_at"]),
        ("generation", _generation_row(public.get("generation"))),
    ]
    if public.get("label"):
        rows.append(("label", public["label"]))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}", file=stream)


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
            "Generate a password locally from a seed and the authority's nonce, certify it "
            "(only public parameters and the seed's commitment are sent) and verify the "
            "certificate. The password is printed only with --show-password (alone on stdout, "
            "or with the seed in --json), or written with the seed and certificate to a new "
            "0600 file with "
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
        help="print the password (and, with --json, the generation seed)",
    )
    p.add_argument(
        "--credential-file",
        metavar="FILE",
        help="write password, generation seed and certificate to a new 0600 JSON file",
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
