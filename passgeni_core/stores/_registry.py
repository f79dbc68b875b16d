"""The backend registry: backends found by URI scheme, as fsspec finds filesystems.

Backends are found through the ``passgeni.stores`` entry-point group: the
entry point's name is the scheme and its object a class implementing
:class:`~passgeni_core.stores.SecretStore` with a ``from_uri(uri, **options)``
class method and, optionally, a ``locations`` attribute (a
:class:`~passgeni_core.stores.LocationGrammar`) that validates the scheme's
locations. The core and the CLI never import a backend by name;
:func:`register_store` adds one at run time.

Loading a backend's class must stay cheap (its SDK is imported when a store
is opened, not when the module loads): validating a destination loads the
class to find its grammar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .._errors import InvalidRequest, StoreError, UnknownStoreScheme
from ._protocol import SecretStore
from ._uri import GENERIC_LOCATIONS, SCHEME, LocationGrammar

STORE_ENTRY_POINT_GROUP = "passgeni.stores"

_registry_lock = threading.Lock()
_registered: dict[str, Callable[..., SecretStore]] = {}
#: Grammar per scheme, found once per process (entry points do not change while it runs).
_grammars: dict[str, LocationGrammar] = {}
#: The group's entry points by scheme, read once per process: reading them scans every
#: installed distribution (tens of ms), and a provision would otherwise do it twice
#: (the destination's grammar, then the store).
_entry_points: dict[str, EntryPoint] | None = None


def _installed() -> dict[str, EntryPoint]:
    global _entry_points
    with _registry_lock:
        found = _entry_points
    if found is None:
        found = {}
        for ep in entry_points(group=STORE_ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep)  # the first, as before
        with _registry_lock:
            _entry_points = found
    return found


def register_store(scheme: str, factory: Callable[..., SecretStore] | None) -> None:
    """Register (or with ``None`` unregister) a backend for ``scheme`` in this process.

    ``factory`` is called as ``factory(uri, **options)`` (a class's ``from_uri``).
    A factory (or the class of a bound ``from_uri``) with a ``locations``
    attribute brings its scheme's location grammar. Run-time registrations
    take precedence over entry points.
    """
    if not SCHEME.fullmatch(scheme):
        raise InvalidRequest(f"{scheme[:40]!r} is not a lower-case URI scheme")
    with _registry_lock:
        if factory is None:
            _registered.pop(scheme, None)
        else:
            _registered[scheme] = factory
        _grammars.pop(scheme, None)


def available_schemes() -> list[str]:
    """Every scheme a backend is installed or registered for."""
    try:
        names = set(_installed())
    except Exception:  # a corrupt installed distribution must not hide the others
        names = set()
    with _registry_lock:
        names.update(_registered)
    return sorted(names)


def _load_entry_point(scheme: str) -> tuple[Any, str] | None:
    """The entry point's loaded object for ``scheme``, and its ``module:attr``."""
    ep = _installed().get(scheme)
    if ep is None:
        return None
    try:
        return ep.load(), ep.value
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200]
        raise StoreError(
            f"the {scheme}:// store backend ({ep.value}) failed to load: "
            f"{type(exc).__name__}: {detail}; is its extra installed (passgeni[vault], "
            "passgeni[aws], passgeni[k8s])?"
        ) from None


def _load(scheme: str) -> tuple[Any, str] | None:
    """The registered factory or the entry point's loaded object, and where it is from."""
    with _registry_lock:
        if scheme in _registered:
            return _registered[scheme], "registered"
    return _load_entry_point(scheme)


def _grammar_of(obj: Any) -> LocationGrammar | None:
    owner = getattr(obj, "__self__", obj)  # a bound ``from_uri``: its class
    candidate = getattr(owner, "locations", None)
    return candidate if isinstance(candidate, LocationGrammar) else None


def store_class(scheme: str) -> Callable[..., SecretStore]:
    """The factory for ``scheme``: ``factory(uri, **options) -> SecretStore``.

    Raises:
        UnknownStoreScheme: no backend is installed for the scheme.
        StoreError: the backend is installed but fails to import (a missing extra).
    """
    found = _load(scheme)
    if found is None:
        known = ", ".join(available_schemes()) or "none"
        raise UnknownStoreScheme(
            f"no secret store backend is installed for {scheme!r}:// (installed: {known}); "
            "install passgeni[vault], passgeni[aws] or passgeni[k8s], or a third-party backend"
        )
    obj, where = found
    factory = getattr(obj, "from_uri", obj)
    if not callable(factory):
        raise StoreError(f"the {scheme}:// store backend ({where}) is not callable")
    checked: Callable[..., SecretStore] = factory
    return checked


def location_grammar(scheme: str) -> LocationGrammar:
    """The grammar of ``scheme``'s locations: its backend's, or the generic one.

    A factory registered at run time brings its own grammar (its class's
    ``locations``) or keeps the installed backend's. A scheme with no backend
    installed, or whose backend fails to load or brings no grammar, gets the
    generic grammar here; opening a store for it then reports what is wrong.
    """
    with _registry_lock:
        known = _grammars.get(scheme)
        registered = _registered.get(scheme)
    if known is not None:
        return known
    grammar = _grammar_of(registered) if registered is not None else None
    if grammar is None:
        try:
            found = _load_entry_point(scheme)
        except StoreError:
            found = None
        grammar = _grammar_of(found[0]) if found is not None else None
    chosen = grammar or GENERIC_LOCATIONS
    with _registry_lock:
        _grammars[scheme] = chosen
    return chosen


def store_settings(scheme: str, given: Mapping[str, object] | None = None) -> dict[str, str]:
    """``given`` (user-supplied ``NAME=VALUE`` store options) checked against the names
    ``scheme``'s backend lists in its class's ``settings`` attribute, as strings.

    This is how an adapter (the CLI's ``--store-option``, Ansible's and Terraform's
    ``store_options``) passes a backend option through without knowing the backend
    (e.g. ``aws-sm``'s ``kms_key_id``).

    Raises:
        InvalidRequest: a name the backend does not list, or a value that is not a string.
        UnknownStoreScheme / StoreError: as :func:`store_class`.
    """
    if not given:
        return {}
    factory = store_class(scheme)
    owner = getattr(factory, "__self__", factory)
    known = tuple(str(n) for n in getattr(owner, "settings", ()) or ())
    out: dict[str, str] = {}
    for name, value in given.items():
        if name not in known:
            raise InvalidRequest(
                f"store option {str(name)[:40]!r} is not one the {scheme}:// backend takes "
                f"(it takes: {', '.join(known) or 'none'})"
            )
        if not isinstance(value, str):
            raise InvalidRequest(f"store option {name!r} must be a string")
        out[name] = value
    return out
