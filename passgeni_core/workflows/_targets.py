"""Credential targets: the systems that use a credential (a PostgreSQL role).

Targets are found by kind through the ``passgeni.targets`` entry-point group,
so the core never imports a database driver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from .._errors import (
    InvalidRequest,
    TargetError,
)

TARGET_ENTRY_POINT_GROUP = "passgeni.targets"


# --- targets ------------------------------------------------------------------------------------


@runtime_checkable
class CredentialTarget(Protocol):
    """A system that uses the credential: the rotation applies the password there.

    Methods raise :class:`TargetError` subclasses only, with messages that
    never contain a password (the target's or its admin connection's).
    """

    #: Short kind name (``"postgresql"``).
    system: str
    #: Characters the target (or connection strings to it) cannot take; merged
    #: into the generation parameters' ``exclude``.
    excluded_characters: str

    def describe(self) -> str:
        """Where the target is (host, role...): no secret."""
        ...

    def set_password(self, password: str) -> None:
        """Make ``password`` the credential's password on the target."""
        ...

    def test_password(self, password: str) -> None:
        """Log in with ``password``; :class:`TargetLoginFailed` if refused."""
        ...

    def close(self) -> None: ...


_targets_lock = threading.Lock()
_registered_targets: dict[str, Callable[..., CredentialTarget]] = {}


def register_target(kind: str, factory: Callable[..., CredentialTarget] | None) -> None:
    """Register (or with ``None`` unregister) a target factory for ``kind`` in this process."""
    with _targets_lock:
        if factory is None:
            _registered_targets.pop(kind, None)
        else:
            _registered_targets[kind] = factory


def open_target(kind: str, options: Mapping[str, Any]) -> CredentialTarget:
    """A target of ``kind`` configured by ``options`` (the entry point's ``from_options``).

    Raises:
        InvalidRequest: no target of that kind is installed, or bad options.
        TargetError: the target's module failed to load.
    """
    with _targets_lock:
        factory = _registered_targets.get(kind)
    if factory is None:
        chosen = [ep for ep in entry_points(group=TARGET_ENTRY_POINT_GROUP) if ep.name == kind]
        if not chosen:
            known = sorted(
                {ep.name for ep in entry_points(group=TARGET_ENTRY_POINT_GROUP)}
                | set(_registered_targets)
            )
            raise InvalidRequest(
                f"unknown target type {kind[:40]!r} (installed: {', '.join(known) or 'none'})"
            )
        try:
            obj = chosen[0].load()
        except Exception as exc:
            raise TargetError(
                f"the {kind} target ({chosen[0].value}) failed to load: {type(exc).__name__}; "
                "is its extra installed (passgeni[postgres])?"
            ) from None
        factory = getattr(obj, "from_options", obj)
    return factory(dict(options))
