"""Secret-store commands: ``provision --store URI`` and ``scan URI...``.

``passgeni provision --preset P --store URI [--rotate] [--json] [--show-password]``
    generates locally, certifies (the certificate's target is the store
    location and the version the write creates), stores the password with its
    binding key and certificate references, then merges the references into
    the store's metadata. Output holds references only, never the password,
    unless ``--show-password``. Re-running is idempotent; ``--rotate``
    replaces an existing credential and then revokes its certificate.

``passgeni scan URI... [--require PRESET] [--expiring-days N] [--format table|json|csv]``
    lists every credential under the URIs (``vault://MOUNT[/PREFIX]``,
    ``aws-sm://[PREFIX]``, ``k8s://NAMESPACE``) with its coverage status.
    Exit 1 when anything falls short (status other than valid or expiring).

Backends are found by URI scheme (``passgeni.stores`` entry points); this
module imports none. Each connects with its ecosystem's usual configuration
(``VAULT_ADDR``/``VAULT_TOKEN``..., the AWS default chain, kubeconfig).

``--store`` is added to the ``provision`` command that ``_remote`` creates
(its other options stay); ``register`` must therefore run after
``_remote.register``. Without ``--store`` the original command runs unchanged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .._errors import InvalidRequest
from .._untrusted import printable
from ..audit import scan
from ..client import connect
from ..crypto import encode_seed
from ..model import detect_entropy_source
from ..stores import open_store, parse_store_uri
from ..workflows import STATUSES, StoreResult, prove_credential, provision_into_store
from ._options import (
    add_connection_options,
    add_parameter_options,
    authority_config,
    jwks_from_file,
    parameters_from_args,
)
from ._output import print_json, print_kv, print_table, warn_if_embedded

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def _connection(args: argparse.Namespace) -> Any:
    return authority_config(args).require_authority()


def _cmd_provision_store(args: argparse.Namespace) -> int:
    conflicting = [
        flag
        for flag, attr in (
            ("--credential-file", "credential_file"),
            ("--target-system", "target_system"),
            ("--target-path", "target_path"),
            ("--target-version", "target_version"),
        )
        if getattr(args, attr, None)
    ]
    if conflicting:
        raise InvalidRequest(
            f"{', '.join(conflicting)} cannot be combined with --store "
            "(the store is the target, and it keeps the credential)"
        )
    params = parameters_from_args(args)
    # Refuse without an authority before the store is even opened (fail closed).
    config = _connection(args)
    # Parse and open the store before anything is certified: a bad URI costs nothing.
    uri = parse_store_uri(args.store)
    store = open_store(uri)
    try:
        with connect(config) as client:
            warn_if_embedded(client.issuer)
            result = provision_into_store(
                client,
                store,
                uri,
                args.preset,
                parameters=params,
                entropy_source=detect_entropy_source(),
                label=getattr(args, "label", None),
                rotate=args.rotate,
            )
    finally:
        store.close()
    _print_result(result, args)
    for warning in result.warnings:
        print(f"passgeni: warning: {warning}", file=sys.stderr)
    return 0


def _print_result(result: StoreResult, args: argparse.Namespace) -> None:
    public = result.public_dict()
    secret: dict[str, str] = {}
    if args.show_password and result.credential is not None:
        secret = {
            "password": result.credential.password,
            "seed": encode_seed(result.credential.seed) if result.credential.seed else "",
        }
    if args.json:
        print_json({**secret, **public})
        return
    rows = [
        ("store", public["store_uri"]),
        ("outcome", public["outcome"]),
        ("version", public["version"]),
        ("cert id", public["cert_id"]),
        ("cert url", public["cert_url"]),
        ("standard", public["compliance_standard"]),
        ("expires", public["expires_at"]),
    ]
    if public.get("previous_cert_id"):
        rows.append(("previous cert", public["previous_cert_id"]))
        rows.append(("previous revoked", "yes" if public["previous_revoked"] else "NO"))
    if secret:
        # The password alone on stdout (PW=$(...) works); the facts on stderr.
        print(secret["password"])
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key.ljust(width)}  {value}", file=sys.stderr)
        return
    print_kv(rows)


def _dispatch(original: Handler | None) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        if getattr(args, "store", None):
            return _cmd_provision_store(args)
        if getattr(args, "rotate", False):
            raise InvalidRequest("--rotate needs --store URI")
        if original is None:
            raise InvalidRequest("provision needs --store URI")
        return original(args)

    return handler


def _cmd_scan(args: argparse.Namespace) -> int:
    fmt = "json" if args.json else args.format
    # Fail on a malformed URI before any connection.
    uris = [parse_store_uri(u, allow_prefix=True) for u in args.uris]
    with connect(_connection(args)) as client:
        report = scan(client, uris, require=args.require, expiring_days=args.expiring_days)
    if fmt == "json":
        print_json(report.to_dict())
    elif fmt == "oscal":
        from ..audit import oscal_from_scan

        sys.stdout.write(oscal_from_scan(report, scopes=args.uris).decode("utf-8"))
    elif fmt == "csv":
        sys.stdout.write(report.to_csv())
    else:
        print_table(
            ["URI", "STATUS", "CERT ID", "STANDARD", "EXPIRES", "DETAIL"],
            [
                (
                    e.uri,
                    e.status,
                    e.cert_id or "-",
                    e.standard or "-",
                    e.to_dict()["expires_at"] or "-",
                    e.detail,
                )
                for e in report.entries
            ],
        )
        counts = report.counts()
        summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        verdict = "ok" if report.ok else "FALLS SHORT"
        required = f" of {report.require}" if report.require else ""
        print(f"\n{len(report.entries)} credential(s): {summary or 'none'} -- {verdict}{required}")
    return 0 if report.ok else 1


def _cmd_prove(args: argparse.Namespace) -> int:
    uri = parse_store_uri(args.uri)
    jwks = jwks_from_file(args.jwks) if args.jwks else None
    with connect(_connection(args)) as client:
        store = open_store(uri)
        try:
            proof = prove_credential(client, store, uri, jwks=jwks)
        finally:
            store.close()
    if args.json:
        print_json(proof.to_dict())
    else:
        head = "PROVEN" if proof.proven else f"NOT PROVEN ({proof.reason})"
        print(f"{head}: {printable(proof.uri)}: {printable(proof.detail)}")
    return 0 if proof.proven else 1


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value[:20]!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return number


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    provision = sub.choices.get("provision")
    original: Handler | None = None
    if provision is None:
        provision = sub.add_parser("provision", help="generate, certify and store a password")
        add_parameter_options(provision)
        provision.add_argument("--label", help="a label for the certificate")
        provision.add_argument("--show-password", action="store_true")
        provision.add_argument("--json", action="store_true", help="machine-readable output")
        add_connection_options(provision)
    else:
        original = provision.get_default("handler")
    group = provision.add_argument_group("secret store")
    group.add_argument(
        "--store",
        metavar="URI",
        help=(
            "store the certified credential at vault://MOUNT/PATH#KEY, aws-sm://NAME#KEY or "
            "k8s://NAMESPACE/NAME#KEY (KEY defaults to 'password'); output then holds "
            "references only, unless --show-password"
        ),
    )
    group.add_argument(
        "--rotate",
        action="store_true",
        help="with --store: replace an existing credential, then revoke its certificate",
    )
    provision.set_defaults(handler=_dispatch(original))

    p = sub.add_parser(
        "scan",
        help="coverage of stored credentials: valid, expiring, expired, revoked, drifted...",
        description=(
            "List every credential under the URIs with its certificate status. Exit 1 when "
            "anything falls short (expired, revoked, drifted, no certificate, below --require, "
            "or not checkable)."
        ),
    )
    p.add_argument(
        "uris",
        nargs="+",
        metavar="URI",
        help="vault://MOUNT[/PREFIX], aws-sm://[PREFIX], k8s://NAMESPACE (or single credentials)",
    )
    p.add_argument("--require", metavar="PRESET", help="flag certificates not meeting this preset")
    p.add_argument(
        "--expiring-days",
        type=_non_negative,
        default=30,
        metavar="N",
        help="report certificates expiring within N days as expiring (default 30)",
    )
    p.add_argument(
        "--format",
        choices=["table", "json", "csv", "oscal"],
        default="table",
        help="oscal: OSCAL assessment results (docs/oscal.md; needs passgeni[auditor])",
    )
    p.add_argument("--json", action="store_true", help="same as --format json")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_scan)

    p = sub.add_parser(
        "prove",
        help="prove a stored credential is exactly the certified, machine-generated one",
        description=(
            "Read the credential at URI and the seed stored beside it, verify its certificate "
            "(signature, jti, target, version, expiry, revocation) and re-derive the password "
            "from the seed and the certified parameters and nonce. Exit 0 only when the stored "
            "value is exactly the certified, generated one; otherwise exit 1 with the reason "
            "(provenance_mismatch, binding_missing, generation_not_provable for certificates "
            "from before generation proofs, revoked, ...)."
        ),
    )
    p.add_argument("uri", metavar="URI", help="vault://MOUNT/PATH#KEY, aws-sm://NAME#KEY, ...")
    p.add_argument(
        "--jwks",
        metavar="FILE",
        help="trust only the keys in this saved JWKS file (default: the authority's)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_prove)
