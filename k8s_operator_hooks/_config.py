"""The operator's settings: the rotation window, the check interval, the namespaces watched.

Read from flags (``passgeni operator``) or the environment (both entry points)
and checked once, before kopf starts: a setting that cannot work is refused
with one line naming it, never discovered later as a rotation on every check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from passgeni_core import CERT_LIFETIME, InvalidRequest as InvalidSetting

__all__ = [
    "CHECK_INTERVAL_ENV",
    "NAMESPACES_ENV",
    "ROTATE_WINDOW_ENV",
    "InvalidSetting",
    "OperatorConfig",
    "WatchScope",
    "parse_namespaces",
    "watch_scope",
]

ROTATE_WINDOW_ENV = "PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS"
CHECK_INTERVAL_ENV = "PASSGENI_OPERATOR_CHECK_INTERVAL"
NAMESPACES_ENV = "PASSGENI_OPERATOR_NAMESPACES"
#: A namespace name (RFC 1123 label) or a kopf glob pattern (``*``, ``?``, ``[...]``, ``!``).
_NAMESPACE = re.compile(r"^!?[a-z0-9*?\[\]-]{1,63}$")


def _days(window: timedelta) -> str:
    return f"{window / timedelta(days=1):g}"


@dataclass(frozen=True, kw_only=True)
class OperatorConfig:
    """Operator-wide settings (see the operator module's docstring for the variables).

    ``rotate_window`` must be shorter than the certificate lifetime
    (``passgeni_core.CERT_LIFETIME``, 365 days): with a window as long, every
    certificate, even one issued a second ago, "expires within the window" and
    each check would rotate every credential. Raises :class:`InvalidSetting`.
    """

    rotate_window: timedelta = timedelta(days=30)
    check_interval: float = 3600.0

    def __post_init__(self) -> None:
        if self.rotate_window < timedelta(0):
            raise InvalidSetting("the rotation window must be zero days or more")
        if self.rotate_window >= CERT_LIFETIME:
            raise InvalidSetting(
                f"the rotation window ({_days(self.rotate_window)} days) is not shorter than "
                f"the certificate lifetime ({_days(CERT_LIFETIME)} days): every certificate "
                "would be rotated on every check; choose fewer days "
                f"(--rotate-window-days / {ROTATE_WINDOW_ENV})"
            )
        if not self.check_interval > 0:
            raise InvalidSetting("the check interval must be more than zero seconds")

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        rotate_window_days: float | None = None,
        check_interval: float | None = None,
    ) -> OperatorConfig:
        """The settings from the environment; explicit arguments (flags) win over it."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            text = (env.get(name) or "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise InvalidSetting(f"{name} must be a number, not {text[:20]!r}") from None
            if value < 0 or value != value or value in (float("inf"), float("-inf")):
                raise InvalidSetting(f"{name} must be a finite number, zero or more")
            return value

        days = (
            rotate_window_days
            if rotate_window_days is not None
            else number(ROTATE_WINDOW_ENV, 30.0)
        )
        interval = (
            check_interval
            if check_interval is not None
            else number(CHECK_INTERVAL_ENV, cls.check_interval)
        )
        return cls(rotate_window=timedelta(days=days), check_interval=max(0.1, interval))


def parse_namespaces(text: str | None, *, source: str = NAMESPACES_ENV) -> tuple[str, ...]:
    """``PASSGENI_OPERATOR_NAMESPACES``: a comma or space separated list; empty means all."""
    names = tuple(n for n in re.split(r"[\s,]+", (text or "").strip()) if n)
    for name in names:
        if not _NAMESPACE.match(name):
            raise InvalidSetting(
                f"{source}: {name[:70]!r} is not a namespace name or a kopf pattern"
            )
    return names


@dataclass(frozen=True)
class WatchScope:
    """What kopf is told to watch: ``namespaces`` (empty: every namespace, kopf's ``-A``) and
    whether it must scan the cluster (list/watch namespaces, cluster-wide) for patterns."""

    namespaces: tuple[str, ...]
    scanning: bool

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def watch_scope(
    flags: tuple[str, ...] = (), environ: Mapping[str, str] | None = None
) -> WatchScope:
    """The namespaces from ``--namespace`` flags, else ``PASSGENI_OPERATOR_NAMESPACES``.

    ``*`` alone is every namespace. Only v1 Secrets are served, so there are no
    custom resources to discover, and exact names need no namespace listing:
    kopf's cluster scanning is needed only for a pattern (``team-*``).
    """
    env = os.environ if environ is None else environ
    if flags:
        names = tuple(n for flag in flags for n in parse_namespaces(flag, source="--namespace"))
    else:
        names = parse_namespaces(env.get(NAMESPACES_ENV))
    if names == ("*",):
        return WatchScope(namespaces=(), scanning=False)
    if "*" in names:
        raise InvalidSetting("'*' (every namespace) cannot be combined with other namespaces")
    return WatchScope(names, scanning=any(set(n) & set("*?[]!") for n in names))
