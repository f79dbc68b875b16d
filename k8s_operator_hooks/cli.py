"""``passgeni operator``: run the Kubernetes operator (kopf) from the passgeni CLI.

``register(subparsers)`` is loaded by the core ``passgeni`` CLI through the
``passgeni.cli`` entry-point group (entry point ``operator``). The command is
the same operator as ``kopf run -m k8s_operator_hooks.operator``:

    passgeni operator [--namespace NS ...] [--rotate-window-days N]
                      [--check-interval SECONDS] [--standalone] [--liveness URL]
                      [--verbose | --debug | --quiet]

Without ``--namespace`` it watches the namespaces ``PASSGENI_OPERATOR_NAMESPACES``
names (comma separated; ``*`` alone: every namespace), or, without it, every
namespace (kopf's ``-A``). A
rotation window not shorter than the certificate lifetime is refused before
kopf starts (one line, exit 2). The authority comes from
``PASSGENI_URL`` and ``PASSGENI_API_KEY`` (never a flag: flags show in ``ps``),
the cluster from kubeconfig or the in-cluster service account.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["register", "run_operator"]


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value[:20]!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return number


def run_operator(
    *,
    namespaces: Sequence[str] = (),
    rotate_window_days: float | None = None,
    check_interval: float | None = None,
    standalone: bool = False,
    liveness: str | None = None,
    verbose: bool = False,
    debug: bool = False,
    quiet: bool = False,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
) -> None:
    """Run the operator until stopped (SIGINT/SIGTERM, or ``stop_flag``)."""
    import kopf

    from ._config import OperatorConfig, watch_scope
    from ._handlers import register_handlers

    # Every setting is checked before kopf starts: one line and exit 2, not a failed start.
    config = OperatorConfig.from_environ(
        rotate_window_days=rotate_window_days, check_interval=check_interval
    )
    scope = watch_scope(tuple(namespaces))
    registry = register_handlers(kopf.OperatorRegistry(), config)
    kopf.configure(verbose=verbose, debug=debug, quiet=quiet)
    # kopf's cluster scanning (list/watch of namespaces and CRDs, cluster-wide permissions)
    # only when a namespace pattern needs it (see watch_scope).
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = not scope.scanning
    kwargs: dict[str, Any] = {"settings": settings}
    if stop_flag is not None:
        kwargs["stop_flag"] = stop_flag
    if ready_flag is not None:
        kwargs["ready_flag"] = ready_flag
    kopf.run(
        registry=registry,
        clusterwide=scope.clusterwide,
        namespaces=list(scope.namespaces),
        standalone=standalone,
        liveness_endpoint=liveness,
        **kwargs,
    )


def _cmd_operator(args: argparse.Namespace) -> int:
    run_operator(
        namespaces=args.namespace or (),
        rotate_window_days=args.rotate_window_days,
        check_interval=args.check_interval,
        standalone=args.standalone,
        liveness=args.liveness,
        verbose=args.verbose,
        debug=args.debug,
        quiet=args.quiet,
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``operator`` to the ``passgeni`` CLI."""
    p = sub.add_parser(
        "operator",
        help="run the Kubernetes operator: certified credentials for annotated Secrets",
        description=(
            "Watch Secrets annotated passgeni.ai/preset and fill each missing key "
            "(passgeni.ai/keys, default 'password') with a generated, certified credential; "
            "rotate on passgeni.ai/rotate or before the certificate expires. The authority "
            "comes from PASSGENI_URL and PASSGENI_API_KEY; the cluster from kubeconfig or the "
            "in-cluster service account."
        ),
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        metavar="NS",
        help="watch only this namespace (repeatable; glob patterns as kopf; env "
        "PASSGENI_OPERATOR_NAMESPACES, comma separated); default: all namespaces",
    )
    p.add_argument(
        "--rotate-window-days",
        type=_non_negative,
        metavar="N",
        help="rotate when the certificate expires within N days "
        "(env PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS; default 30; must be shorter than the "
        "365-day certificate lifetime)",
    )
    p.add_argument(
        "--check-interval",
        type=_non_negative,
        metavar="SECONDS",
        help="seconds between expiry checks per Secret "
        "(env PASSGENI_OPERATOR_CHECK_INTERVAL; default 3600)",
    )
    p.add_argument(
        "--standalone",
        action="store_true",
        help="no peering with other operator instances (kopf --standalone)",
    )
    p.add_argument(
        "--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    level = p.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true")
    level.add_argument("--debug", action="store_true")
    level.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(handler=_cmd_operator)
