"""``passgeni authority ...``: serve the authority and manage its API keys and signing keys.

``register(subparsers)`` is loaded by the core ``passgeni`` CLI through the
``passgeni.cli`` entry-point group; ``python -m passgeni_authority`` runs the
same commands standalone.

Configuration precedence: flags > environment (``PASSGENI_DATABASE_URL``,
``PASSGENI_STATE_DIR``, ``PASSGENI_PUBLIC_URL``, ``PASSGENI_TRANSIT_URL``,
``PASSGENI_TRANSIT_KEY``, ``PASSGENI_TRUSTED_PROXIES``; the Transit token
only from ``PASSGENI_TRANSIT_TOKEN`` or ``VAULT_TOKEN``, never a flag,
because flags show in ``ps``) > defaults. :func:`settings_from_environment`
is that merge, shared with ``passgeni_authority.asgi``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from passgeni_core import InvalidRequest, PassgeniError

from ._opscli import (
    OPS_SERVE_KEYS,
    add_key_flags,
    add_ops_commands,
    add_serve_flags,
    ops_settings,
)
from ._service import AuthorityService
from ._settings import DEFAULT_PUBLIC_URL, AuthoritySettings, default_state_dir
from ._signing import Signer, TransitSigner
from ._workers import CPU_AFFINITY

__all__ = ["build_settings", "main", "register", "settings_from_environment"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_TRANSIT_KEY = "passgeni-authority"


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def settings_from_environment(
    *,
    database_url: str | None = None,
    state_dir: str | None = None,
    public_url: str | None = None,
    served_url: str | None = None,
    issuer: str | None = None,
    transit_url: str | None = None,
    transit_key: str | None = None,
    trusted_proxies: Sequence[str] | None = None,
    fips_strict: bool | None = None,
    fips_flag_path: str | None = None,
    event_retention_days: int | None = None,
    anomaly_webhook: str | None = None,
) -> AuthoritySettings:
    """Settings from explicit values (flags), else the environment, else defaults.

    The one reading of the environment, for ``serve`` and the other commands
    as for ``passgeni_authority.asgi`` (which passes nothing explicit):
    ``PASSGENI_DATABASE_URL``, ``PASSGENI_STATE_DIR``, ``PASSGENI_PUBLIC_URL``
    (then ``served_url``, then :data:`DEFAULT_PUBLIC_URL`), ``PASSGENI_ISSUER``
    (the certificates' ``iss``; default: the public URL),
    ``PASSGENI_TRANSIT_URL`` with ``PASSGENI_TRANSIT_KEY`` (default
    ``passgeni-authority``) and the token from ``PASSGENI_TRANSIT_TOKEN`` or
    ``VAULT_TOKEN`` (never a flag), ``PASSGENI_TRUSTED_PROXIES``
    (comma-separated addresses), those of :func:`._opscli.ops_settings`, ``PASSGENI_FIPS_FLAG_PATH`` (where the host's
    FIPS mode is read; default ``/proc/sys/crypto/fips_enabled``). Reads nothing but the environment: no file,
    no database, no network.

    Raises:
        InvalidRequest: a Transit URL without a token; as :func:`._opscli.ops_settings`.
    """
    state = state_dir or _env("PASSGENI_STATE_DIR")
    signer: Signer | None = None
    transit_url = transit_url or _env("PASSGENI_TRANSIT_URL")
    if transit_url:
        token = _env("PASSGENI_TRANSIT_TOKEN") or _env("VAULT_TOKEN")
        if not token:
            raise InvalidRequest(
                "the Transit signer needs a token in PASSGENI_TRANSIT_TOKEN or VAULT_TOKEN"
            )
        key_name = transit_key or _env("PASSGENI_TRANSIT_KEY") or DEFAULT_TRANSIT_KEY
        signer = TransitSigner(transit_url, token, key_name=key_name)
    kwargs: dict[str, Any] = {
        "database_url": database_url or _env("PASSGENI_DATABASE_URL"),
        "public_url": public_url or _env("PASSGENI_PUBLIC_URL") or served_url or DEFAULT_PUBLIC_URL,
        "state_dir": Path(state) if state else default_state_dir(),
        "signer": signer,
        "issuer": _issuer(issuer or _env("PASSGENI_ISSUER")),
    }
    if fips_strict is not None:
        kwargs["fips_strict"] = fips_strict
    flag = fips_flag_path or _env("PASSGENI_FIPS_FLAG_PATH")
    if flag:
        kwargs["fips_flag_path"] = Path(flag)
    if trusted_proxies is None:
        listed = _env("PASSGENI_TRUSTED_PROXIES") or ""
        trusted_proxies = [p.strip() for p in listed.split(",") if p.strip()]
    if trusted_proxies:
        kwargs["trusted_proxies"] = tuple(trusted_proxies)
    kwargs.update(ops_settings(event_retention_days, anomaly_webhook))
    return AuthoritySettings(**kwargs)


def _issuer(value: str | None) -> str | None:
    if value is None:
        return None
    if value != value.strip() or len(value) > 256 or not value.isprintable():
        raise InvalidRequest(
            "the issuer must be printable, at most 256 characters, without surrounding spaces"
        )
    return value


def build_settings(args: argparse.Namespace, *, served_url: str | None = None) -> AuthoritySettings:
    """Merge flags, environment and defaults (in that order) into settings.

    Raises:
        InvalidRequest: a Transit URL without a token.
    """
    return settings_from_environment(
        database_url=args.database_url,
        state_dir=args.state_dir,
        public_url=args.public_url,
        served_url=served_url,
        issuer=getattr(args, "issuer", None),
        transit_url=args.transit_url,
        transit_key=args.transit_key,
        trusted_proxies=getattr(args, "trusted_proxy", None) or None,
        fips_strict=False if getattr(args, "no_fips_strict", False) else None,
        fips_flag_path=getattr(args, "fips_flag_path", None),
        event_retention_days=getattr(args, "event_retention_days", None),
        anomaly_webhook=getattr(args, "anomaly_webhook", None),
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
        "(env PASSGENI_DATABASE_URL; default: SQLite in the state dir)",
    )
    parser.add_argument(
        "--state-dir",
        help="directory for the SQLite store and key files "
        "(env PASSGENI_STATE_DIR; default ~/.local/share/passgeni)",
    )
    parser.add_argument(
        "--public-url",
        help="the authority's public base URL = certificate issuer "
        f"(env PASSGENI_PUBLIC_URL; default {DEFAULT_PUBLIC_URL} or the served address)",
    )
    parser.add_argument(
        "--issuer",
        help="the certificates' iss claim, e.g. passgeni.ai (env PASSGENI_ISSUER; default: "
        "the public URL); verifiers must expect it (PASSGENI_ISSUER, --issuer)",
    )
    parser.add_argument(
        "--transit-url",
        help="sign with Vault/OpenBao Transit at this URL (env PASSGENI_TRANSIT_URL; "
        "token from PASSGENI_TRANSIT_TOKEN or VAULT_TOKEN)",
    )
    parser.add_argument(
        "--transit-key",
        help=f"Transit key name, ecdsa-p256 (env PASSGENI_TRANSIT_KEY; default {DEFAULT_TRANSIT_KEY})",
    )


def _service(args: argparse.Namespace) -> AuthorityService:
    return AuthorityService(build_settings(args))


#: The ``serve`` options handed to worker processes (``--workers N``).
_SERVE_ENV = "PASSGENI_AUTHORITY_SERVE_OPTIONS"
_SERVE_KEYS = (
    "database_url",
    "state_dir",
    "public_url",
    "issuer",
    "transit_url",
    "transit_key",
    "no_fips_strict",
    "fips_flag_path",
    "trusted_proxy",
    "host",
    "port",
    *OPS_SERVE_KEYS,
)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ._app import create_app

    host, port = args.host, args.port
    settings = build_settings(args, served_url=f"http://{host}:{port}")
    workers = args.workers
    if workers < 1:
        raise InvalidRequest("--workers must be at least 1")
    banner = (
        f"passgeni authority: serving {settings.public_url} on {host}:{port}"
        + (f" as issuer {settings.issuer}" if settings.issuer else "")
        + (f" with {workers} worker processes" if workers > 1 else "")
    )
    from ._workers import uvicorn_options

    options = uvicorn_options(args.log_level, args.log_format)
    from ._logs import announce

    announce(banner, options.get("log_config"))
    if args.server == "granian":
        from ._granian import serve_granian

        if not 0.001 <= args.header_timeout <= 60:
            raise InvalidRequest("--header-timeout must be between 0.001 and 60 seconds")
        if args.header_buffer < 8192:
            raise InvalidRequest("--header-buffer must be at least 8192 bytes")
        _prepare_workers(args, settings)
        from ._workers import shared_metrics

        with shared_metrics(workers):
            return serve_granian(
                "passgeni_authority.cli:worker_app",
                host=host,
                port=port,
                workers=workers,
                log_level=args.log_level,
                header_timeout_seconds=args.header_timeout,
                header_buffer_bytes=args.header_buffer,
            )
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(
            "passgeni authority: warning: uvicorn does not bound the size or arrival time of "
            "request headers; an authority reachable from untrusted networks should use "
            "--server granian or a reverse proxy that does (docs/deployment-asgi.md#limits)",
            file=sys.stderr,
        )
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, **options)
        return 0
    # Several processes on one port (a socket each, see _workers), sharing the
    # database like separate authority processes do.
    _prepare_workers(args, settings)
    from ._workers import serve_workers, worker_cpus

    return serve_workers(
        "passgeni_authority.cli:worker_app",
        host=host,
        port=port,
        workers=workers,
        log_level=args.log_level,
        cpus=worker_cpus(workers, args.cpu_affinity),
        log_format=args.log_format,
    )


def _prepare_workers(args: argparse.Namespace, settings: AuthoritySettings) -> None:
    """Before worker processes start: migrate and bootstrap once, and leave them the
    options they rebuild their settings from (they are spawned, not forked; secrets
    stay where they were, in environment variables)."""
    AuthorityService(settings).close()
    os.environ[_SERVE_ENV] = json.dumps({k: getattr(args, k, None) for k in _SERVE_KEYS})


def worker_app() -> Any:
    """The app of one ``serve --workers N`` worker process (a uvicorn factory)."""
    from ._app import create_app

    options = json.loads(os.environ[_SERVE_ENV])
    args = argparse.Namespace(**options)
    settings = build_settings(args, served_url=f"http://{args.host}:{args.port}")
    # One of several processes: a loop waiting for its disk sync leaves the
    # CPU to the others (see AuthoritySettings.wal_sync_in_loop).
    return create_app(dataclasses.replace(settings, wal_sync_in_loop=True))


def _cmd_create_key(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        options = {"plan": args.plan, "operator": args.operator}
        created = svc.create_api_key(
            args.user, team=args.team, rate_limit=args.rate_limit, **options
        )
    if args.json:
        _print_json(created.to_dict())
        return 0
    # The key alone on stdout (KEY=$(passgeni authority create-key ...)); it is
    # shown once and never stored.
    print(created.key)
    print(
        f"API key {created.prefix} for user {created.user_id}"
        + (f" (team {created.team_id})" if created.team_id else "")
        + (" (operator: its dashboard shows every team)" if args.operator else "")
        + ": store it now, it cannot be shown again",
        file=sys.stderr,
    )
    return 0


def _cmd_list_keys(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        keys = svc.list_api_keys()
    if args.json:
        _print_json({"keys": [k.to_dict() for k in keys]})
        return 0
    from passgeni_core.cli import print_table

    print_table(
        ["PREFIX", "USER", "TEAM", "RATE LIMIT", "CREATED", "REVOKED"],
        [
            (
                d["prefix"],
                d["user"],
                d["team"] or "-",
                d["rate_limit"] or "default",
                d["created_at"],
                d["revoked_at"] or "-",
            )
            for d in (k.to_dict() for k in keys)
        ],
    )
    return 0


def _cmd_revoke_key(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        info = svc.revoke_api_key(args.prefix)
    if args.json:
        _print_json(info.to_dict())
    else:
        print(f"revoked API key {info.prefix} (user {info.user_id})")
    return 0


def _cmd_rotate_keys(args: argparse.Namespace) -> int:
    with _service(args) as svc:
        before = {k.kid for k in svc.signing_keys()}
        new = svc.rotate_keys()
        keys = svc.signing_keys()
    if args.json:
        _print_json({"active": new.kid, "keys": [k.to_dict() for k in keys]})
        return 0
    print(new.kid)
    retired = sorted(before - {new.kid})
    print(
        f"signing key {new.kid} is active; {len(retired)} retired key(s) stay in the JWKS "
        "until their last certificate expires",
        file=sys.stderr,
    )
    return 0


def _add_commands(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the authority over HTTP (uvicorn)")
    _common(p)
    p.add_argument("--host", default=DEFAULT_HOST, help=f"listen address (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--no-fips-strict",
        action="store_true",
        help="FIPS rule lenient-v1: list FIPS 140-3 from the parameters and record what did "
        "not hold (default strict-v1: only from a FIPS-mode host and a client declaring FIPS mode)",
    )
    p.add_argument(
        "--fips-flag-path",
        metavar="FILE",
        help="read this host's FIPS mode from FILE ('1': FIPS mode; env PASSGENI_FIPS_FLAG_PATH; "
        "default /proc/sys/crypto/fips_enabled)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="IP",
        help="believe X-Forwarded-For from this peer (repeatable)",
    )
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help=(
            "worker processes sharing the port (a SO_REUSEPORT socket each) and the "
            "database; one that dies is restarted (default 1)"
        ),
    )
    p.add_argument(
        "--cpu-affinity",
        choices=CPU_AFFINITY,
        default="auto",
        help=(
            "pin each worker to a CPU of its own: 'auto' (default) when --workers "
            "equals the CPUs this process may use, 'on' always (round-robin), 'off' never"
        ),
    )
    add_serve_flags(p)
    p.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help=(
            "the HTTP server: uvicorn (default), or granian, which bounds request headers "
            "(431 over --header-buffer bytes or 100 headers; cut off after --header-timeout)"
        ),
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="granian: headers must arrive within this (default 10)",
    )
    p.add_argument(
        "--header-buffer",
        type=int,
        default=64 * 1024,
        metavar="BYTES",
        help="granian: request line and headers at most this many bytes (default 65536)",
    )
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser("create-key", help="create an API key (printed once)")
    _common(p)
    p.add_argument("--user", required=True, help="user id (created if new)")
    p.add_argument("--team", help="make it a team key (the user joins the team)")
    p.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="automation key: N requests per minute (exempt from the per-IP limit)",
    )
    add_key_flags(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_create_key)

    p = sub.add_parser("list-keys", help="list API keys (prefixes only)")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_list_keys)

    p = sub.add_parser("revoke-key", help="revoke an API key by its prefix")
    _common(p)
    p.add_argument("prefix", help="the key's public prefix (or the key itself)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_revoke_key)

    p = sub.add_parser(
        "rotate-keys", help="add a new signing key and make it active (old ones stay verifiable)"
    )
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_rotate_keys)

    add_ops_commands(sub, _common, _service)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``authority`` and its subcommands to the ``passgeni`` CLI."""
    p = sub.add_parser("authority", help="run and administer a certificate authority")
    inner = p.add_subparsers(dest="authority_command", metavar="COMMAND")
    inner.required = True
    _add_commands(inner)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point (``python -m passgeni_authority COMMAND ...``)."""
    from passgeni_core.cli import exit_code_for

    parser = argparse.ArgumentParser(prog="passgeni-authority")
    sub = parser.add_subparsers(dest="authority_command", metavar="COMMAND")
    sub.required = True
    _add_commands(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except PassgeniError as exc:
        print(f"passgeni: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    return code
