"""The auditor's toolkit: ``policy``, ``registry``, ``evidence``, ``status-list``.

``passgeni policy --standards soc2,hipaa --org "Example Corp" [--format md|html|pdf] [--out FILE]``
    the written password policy (local; no authority needed).

``passgeni registry [--scope URI...] [--format csv|json|ics] [--out FILE] [--remind-days N]``
    the credential -> certificate map from the authority's audit, plus a scan of
    the stores under each ``--scope``; ``ics`` is a calendar with one event per
    certificate expiry and a reminder ``N`` days ahead.

``passgeni evidence --out bundle.zip [--scope URI...] [--since DATE] [--standards ...] [--org ...]``
    one zip an auditor checks offline (see ``passgeni_core.audit.build_bundle``);
``passgeni evidence verify bundle.zip [--issuer URL] [--jwks FILE] [--json]``
    checks it with no network and prints a verdict per certificate (exit 1
    when the bundle is not authentic, or with ``--require-valid`` when a
    certificate is revoked or expired).

``passgeni status-list fetch [URI...] --out FILE``
    caches the authority's signed status lists (one JWT per line) for
    ``passgeni verify TOKEN --jwks FILE --status-list FILE`` (no network).

This module is the I/O edge: it reads and writes files and talks to the
authority; the logic lives in :mod:`passgeni_core.audit`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import InvalidRequest
from ..client import connect
from ..crypto import JWKS, verify_status_list
from ._options import add_connection_options, authority_config, read_file
from ._output import print_json, print_kv, print_table, write_output

__all__ = ["register"]


def _connection(args: argparse.Namespace) -> Any:
    return authority_config(args).require_authority()


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"--since must be an ISO 8601 date, got {value[:40]!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# --- status lists ----------------------------------------------------------------------


def _cmd_status_list_fetch(args: argparse.Namespace) -> int:
    with connect(_connection(args)) as client:
        uris = args.uris or client.status_list_uris()
        tokens = [client.get_status_list(uri) for uri in uris]
        jwks = client.jwks()
        issuer = client.issuer
    # Verified before caching: a cache must never hold a list we could not check.
    lists = [verify_status_list(t, jwks, issuer=issuer) for t in tokens]
    write_output(args.out, "".join(t + "\n" for t in tokens).encode("ascii"))
    if args.out in (None, "-"):
        return 0
    rows = [
        {
            "uri": lst.uri,
            "entries": lst.size,
            "issued_at": lst.issued_at.isoformat() if lst.issued_at else None,
            "revoked": sum(1 for i in range(lst.size) if lst.get(i)),
        }
        for lst in lists
    ]
    if args.json:
        print_json({"out": args.out, "issuer": issuer, "status_lists": rows})
    else:
        print_table(
            ["STATUS LIST", "ENTRIES", "REVOKED", "ISSUED"],
            [(r["uri"], r["entries"], r["revoked"], r["issued_at"]) for r in rows],
        )
        print(f"\nwrote {len(rows)} signed status list(s) to {args.out}", file=sys.stderr)
    return 0


# --- policy -----------------------------------------------------------------------------


def _cmd_policy(args: argparse.Namespace) -> int:
    from ..audit import render_policy

    fmt = args.format
    if fmt is None:
        suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
        fmt = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
        fmt = fmt if fmt in ("md", "html", "pdf") else "md"
    if fmt == "pdf" and args.out in (None, "-") and sys.stdout.isatty():
        raise InvalidRequest("a PDF is binary: give --out FILE (or redirect stdout)")
    data = render_policy(args.standards, args.org, fmt=fmt, owner=args.owner)
    write_output(args.out, data, binary_ok=True)
    if args.out not in (None, "-"):
        print(f"wrote {fmt} policy ({len(data)} bytes) to {args.out}", file=sys.stderr)
    return 0


# --- registry ---------------------------------------------------------------------------


def _gather(args: argparse.Namespace, client: Any) -> tuple[list[Any], Any]:
    """The audit's certificates (``--since``) and a scan of ``--scope`` (or None)."""
    from ..audit import scan
    from ..stores import parse_store_uri

    since = _since(getattr(args, "since", None))
    records = list(client.iter_audit(since=since, page_size=500))
    coverage = None
    if args.scope:
        uris = [parse_store_uri(u, allow_prefix=True) for u in args.scope]
        coverage = scan(client, uris)
    return records, coverage


def _check_scopes(scopes: list[str] | None) -> None:
    """Fail on a malformed URI or a scheme with no backend before any connection."""
    from .._errors import UnknownStoreScheme
    from ..stores import available_schemes, parse_store_uri

    for uri in scopes or ():
        parsed = parse_store_uri(uri, allow_prefix=True)
        installed = available_schemes()
        if parsed.scheme not in installed:
            raise UnknownStoreScheme(
                f"no secret store backend is installed for {parsed.scheme!r}:// "
                f"(installed: {', '.join(sorted(installed)) or 'none'})"
            )


def _policy_standards(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    from ..audit import parse_standards

    return tuple(p.id for p in parse_standards(value))


def _cmd_registry(args: argparse.Namespace) -> int:
    from ..audit import build_registry

    fmt = args.format
    if fmt is None:
        suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
        fmt = suffix if suffix in ("csv", "json", "ics") else "csv"
        if args.out and args.out.lower().endswith((".oscal.json", ".ar.json")):
            fmt = "oscal"
    _check_scopes(args.scope)
    with connect(_connection(args)) as client:
        records, coverage = _gather(args, client)
        registry = build_registry(
            records,
            coverage,
            remind_days=args.remind_days,
            issuer=client.issuer,
            scopes=args.scope or (),
            accounts=args.accounts,
            policy=_policy_standards(args.policy_standards),
        )
    if fmt == "json":
        import json

        data = (json.dumps(registry.to_dict(), indent=2) + "\n").encode("utf-8")
    elif fmt == "ics":
        data = registry.to_ics()
    elif fmt == "oscal":
        from ..audit import oscal_from_registry

        data = oscal_from_registry(registry)
    else:
        data = registry.to_csv().encode("utf-8")
    write_output(args.out, data)
    if args.out not in (None, "-"):
        counts = registry.to_dict()["counts"]
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "empty"
        print(
            f"wrote {fmt} registry of {len(registry.entries)} entr"
            f"{'y' if len(registry.entries) == 1 else 'ies'} ({summary}) to {args.out}",
            file=sys.stderr,
        )
    return 0


# --- evidence ---------------------------------------------------------------------------


def _cmd_evidence(args: argparse.Namespace) -> int:
    if getattr(args, "evidence_command", None) == "verify":
        return _cmd_evidence_verify(args)
    if not args.out:
        raise InvalidRequest("give --out bundle.zip (or `passgeni evidence verify bundle.zip`)")
    from ..audit import build_bundle, build_registry, render_policy
    from ..crypto import unverified_payload

    _check_scopes(args.scope)
    with connect(_connection(args)) as client:
        records, coverage = _gather(args, client)
        if args.scope:
            found = {e.cert_id for e in coverage.entries if e.cert_id} if coverage else set()
            prefixes = [u.rstrip("/") for u in args.scope]

            def in_scope(r: Any) -> bool:
                if r.cert_id in found:
                    return True
                t = r.target
                where = f"{t.system}://{t.path}" if t else ""
                return any(where.startswith(p) for p in prefixes)

            records = [r for r in records if in_scope(r)]
        registry = build_registry(records, coverage, issuer=client.issuer, scopes=args.scope or ())
        uris: set[str] = set()
        for r in records:
            status = unverified_payload(r.token).get("status")
            sl = status.get("status_list") if isinstance(status, dict) else None
            if isinstance(sl, dict) and isinstance(sl.get("uri"), str):
                uris.add(sl["uri"])
        lists = {uri: client.get_status_list(uri) for uri in sorted(uris)}
        history = client.signing_key_history()
        log = _log_evidence(client, records)
        standards = args.standards or sorted({r.compliance_standard for r in records}) or ["soc2"]
        policy = render_policy(standards, args.org, fmt="md")
        bundle = build_bundle(
            issuer=client.issuer,
            certificates=[r.token for r in records],
            jwks_history=history,
            status_lists=lists,
            registry_csv=registry.to_csv(),
            policy_md=policy,
            sign=client.sign_manifest,
            scopes=args.scope or (),
            since=args.since,
            log=log,
        )
    write_output(args.out, bundle, binary_ok=True)
    summary = {
        "out": args.out,
        "bytes": len(bundle),
        "certificates": len(records),
        "status_lists": len(lists),
        "signing_keys": len(history.get("keys", [])),
        "log_checkpoint_size": None if log is None else log["size"],
        "registry_entries": len(registry.entries),
        "verify": f"passgeni evidence verify {args.out}",
    }
    if args.json:
        print_json(summary)
    else:
        print_kv([(k.replace("_", " "), v) for k, v in summary.items()])
    return 0


def _log_evidence(client: Any, records: list[Any]) -> dict[str, Any] | None:
    """The log's key, a checkpoint and each record's inclusion proof in it (None: the
    authority keeps no log). A certificate missing from the log stops the bundle."""
    import base64

    from .._errors import LogProofInvalid, NotFound
    from ..crypto import open_checkpoint

    try:
        key = client.log_key()
    except NotFound:
        return None
    note = client.log_checkpoint()
    checkpoint = open_checkpoint(note, key, origin=key.name)
    proofs: dict[str, Any] = {}
    for r in records:
        if r.log_index is None or r.log_index >= checkpoint.size:
            raise LogProofInvalid(f"certificate {r.cert_id} is not in the authority's log")
        hashes = client.log_inclusion_proof(r.log_index, checkpoint.size)
        proofs[r.cert_id] = {
            "index": r.log_index,
            "hashes": [base64.b64encode(h).decode() for h in hashes],
        }
    return {"key": key.key, "checkpoint": note, "size": checkpoint.size, "proofs": proofs}


def _cmd_evidence_verify(args: argparse.Namespace) -> int:
    from ..audit import verify_bundle

    trusted = None
    if args.jwks:
        trusted = JWKS.from_dict(read_file(args.jwks, "JWKS file").decode("utf-8", "replace"))
    log_key = args.log_key
    if log_key is not None and log_key.startswith("@"):
        log_key = read_file(log_key[1:], "log key file").decode("ascii", "replace").strip()
    report = verify_bundle(
        read_file(args.bundle, "evidence bundle"),
        issuer=args.issuer,
        trusted_jwks=trusted,
        trusted_log_key=log_key,
    )
    failing = not report.authentic or (
        args.require_valid and any(v.verdict != "valid" for v in report.verdicts)
    )
    if args.json:
        print_json(report.to_dict())
        return 1 if failing else 0
    print_table(
        ["CERTIFICATE", "VERDICT", "STANDARD", "EXPIRES", "DETAIL"],
        [
            (
                v.cert_id,
                v.verdict.upper(),
                v.standard or "-",
                v.to_dict()["expires_at"] or "-",
                v.detail,
            )
            for v in report.verdicts
        ],
    )
    print()
    said = [(v.cert_id, v.sources) for v in report.verdicts if v.sources is not None]
    if said:
        # Who vouches for what, per certificate (the table says whether it is valid).
        print("declared versus observed:")
        for cert_id, sources in said:
            print(f"  {cert_id}: {sources.declared}")
            print(f"  {' ' * len(cert_id)}  {sources.observed}")
            print(f"  {' ' * len(cert_id)}  FIPS 140-3: {sources.fips}")
        print()
    for problem in report.problems:
        print(f"FAIL  {problem}")
    for note in report.notes:
        print(f"note  {note}")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items())) or "none"
    verdict = "AUTHENTIC" if report.authentic else "NOT AUTHENTIC"
    print(
        f"\nbundle {args.bundle}: {verdict} (issuer {report.issuer}, created "
        f"{report.to_dict()['created_at']}); certificates: {counts}"
    )
    return 1 if failing else 0


# --- registration -----------------------------------------------------------------------


def _days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value[:20]!r}") from None
    if not 0 <= number <= 3650:
        raise argparse.ArgumentTypeError("must be between 0 and 3650")
    return number


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "policy",
        help="write the password policy document for chosen standards (md, html, pdf)",
        description=(
            "Scope, each standard's requirement with its citation and honesty note, generation "
            "rules, rotation schedule, certificate handling, revocation and review cadence."
        ),
    )
    p.add_argument(
        "--standards",
        required=True,
        metavar="IDS",
        help="comma-separated preset ids, e.g. soc2,hipaa",
    )
    p.add_argument("--org", required=True, help="the organisation's name")
    p.add_argument("--owner", help="the policy owner (default: Head of Information Security)")
    p.add_argument(
        "--format", choices=["md", "html", "pdf"], help="default: from --out's suffix, else md"
    )
    p.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    p.set_defaults(handler=_cmd_policy)

    p = sub.add_parser(
        "registry",
        help="credential -> certificate registry: CSV, JSON or an .ics expiry calendar",
    )
    p.add_argument(
        "--scope",
        nargs="+",
        metavar="URI",
        help="also scan these stores (vault://MOUNT[/PREFIX], aws-sm://[PREFIX], k8s://NS)",
    )
    p.add_argument("--since", metavar="DATE", help="only certificates issued since (ISO 8601)")
    p.add_argument(
        "--format",
        choices=["csv", "json", "ics", "oscal"],
        help="default: from --out's suffix, else csv (oscal: OSCAL assessment results)",
    )
    p.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "--remind-days",
        type=_days,
        default=30,
        metavar="N",
        help="calendar reminder N days before each rotation date and expiry (default 30)",
    )
    p.add_argument(
        "--accounts",
        choices=["service", "privileged"],
        default="service",
        help="calendar rotation dates follow the written policy's period for these accounts "
        "(e.g. PCI DSS: privileged 90 days, service 365; default service)",
    )
    p.add_argument(
        "--policy-standards",
        metavar="IDS",
        help="the written policy's standards (as `passgeni policy --standards`): rotate at the "
        "shortest of their periods (default: each certificate's own standard)",
    )
    add_connection_options(p)
    p.set_defaults(handler=_cmd_registry)

    p = sub.add_parser(
        "evidence",
        help="write an evidence bundle an auditor verifies offline; `evidence verify` checks one",
    )
    p.add_argument("--out", metavar="FILE", help="the bundle to write, e.g. bundle.zip")
    p.add_argument("--scope", nargs="+", metavar="URI", help="stores to scan and restrict to")
    p.add_argument("--since", metavar="DATE", help="only certificates issued since (ISO 8601)")
    p.add_argument("--standards", metavar="IDS", help="policy standards (default: those certified)")
    p.add_argument("--org", default="The organisation", help="organisation name for the policy")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_evidence)
    evsub = p.add_subparsers(dest="evidence_command", metavar="verify")
    v = evsub.add_parser("verify", help="check a bundle offline; a verdict per certificate")
    v.add_argument("bundle", metavar="BUNDLE.zip")
    v.add_argument("--issuer", help="the authority you expect (default: the bundle's, noted)")
    v.add_argument("--jwks", metavar="FILE", help="trusted keys: the bundle must use only these")
    v.add_argument(
        "--log-key",
        metavar="KEY|@FILE",
        help="the transparency log's trusted note key (/.well-known/log-key, obtained out of band)",
    )
    v.add_argument(
        "--require-valid",
        action="store_true",
        help="exit 1 when any certificate is revoked or expired, too",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(handler=_cmd_evidence)

    p = sub.add_parser("status-list", help="signed revocation status lists (offline revocation)")
    ssub = p.add_subparsers(dest="status_list_command", metavar="fetch")
    ssub.required = True
    f = ssub.add_parser("fetch", help="cache the authority's signed status lists in a file")
    f.add_argument("uris", nargs="*", metavar="URI", help="lists to fetch (default: all)")
    f.add_argument("--out", metavar="FILE", help="write here, one JWT per line (default: stdout)")
    f.add_argument("--json", action="store_true", help="machine-readable summary")
    add_connection_options(f)
    f.set_defaults(handler=_cmd_status_list_fetch)
