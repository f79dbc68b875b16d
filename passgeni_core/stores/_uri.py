"""Store URIs: one destination grammar, with each backend owning its locations.

A credential's home is named by one URI, the same everywhere (CLI, Ansible,
Terraform, the Kubernetes operator)::

    store-uri   = scheme "://" location [ "#" key ]
    key         = 1*128 ( ALPHA / DIGIT / "-" / "_" / "." ), and not containing ".passgeni-"

* ``#KEY`` names the field of the secret that holds the password; when it is
  omitted the key is ``password`` (so ``vault://secret/app/db`` means
  ``vault://secret/app/db#password``).
* Nothing is percent-decoded; no user, port, query, whitespace or control
  character is allowed. Schemes are lower case. Anything else is refused with
  :class:`InvalidStoreURI` naming what is wrong.
* The location's grammar belongs to the scheme's backend: a backend class
  may carry a :class:`LocationGrammar` as its ``locations`` attribute, found
  through the ``passgeni.stores`` entry point (so the core knows no backend
  by name). The first-party ones::

    vault://MOUNT/PATH#KEY       HashiCorp Vault / OpenBao, KV version 2
    aws-sm://NAME#KEY            AWS Secrets Manager (a secret name, or its full ARN)
    k8s://NAMESPACE/NAME#KEY     a Kubernetes Secret

  A scheme whose backend has no grammar (or none installed) gets the generic
  one: a location of printable, non-space ASCII characters.
* Prefix form, for listing and scanning only (``vault://MOUNT[/PREFIX]``,
  ``aws-sm://[PREFIX]``, ``k8s://NAMESPACE``): what the grammar says names no
  single credential. A trailing ``/`` is allowed.

This module imports nothing heavy (no requests, no pyjwt): the Terraform
program validates its input with it on every plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._errors import InvalidStoreURI
from ..model import Target

__all__ = [
    "DEFAULT_KEY",
    "FIELD_MARK",
    "GENERIC_LOCATIONS",
    "LocationGrammar",
    "StoreURI",
    "check_segments",
]

DEFAULT_KEY = "password"
#: Reserved infix of the companion fields stored beside ``KEY``.
FIELD_MARK = ".passgeni-"

SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,31}")
KEY = re.compile(r"[A-Za-z0-9._-]{1,128}")
MAX_URI = 2048
_SEGMENT = re.compile(r"[A-Za-z0-9_.@+=-]+")
_GENERIC_LOCATION = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class StoreURI:
    """A parsed destination. ``str()`` is the canonical form (always with ``#key``)."""

    scheme: str
    #: Everything between ``://`` and ``#`` (no trailing ``/``; may be "" for a prefix).
    location: str
    key: str = DEFAULT_KEY
    #: True when ``#KEY`` was written (the key was not defaulted).
    explicit_key: bool = False
    #: True for the prefix form (listing/scanning), not a single credential.
    prefix: bool = False

    def __str__(self) -> str:
        base = f"{self.scheme}://{self.location}"
        if self.prefix and not self.explicit_key:
            return base
        return f"{base}#{self.key}"

    @property
    def parts(self) -> tuple[str, ...]:
        """The location's ``/``-separated parts."""
        return tuple(p for p in self.location.split("/") if p) if self.location else ()

    @property
    def target_path(self) -> str:
        """``LOCATION#KEY``: the ``path`` of the certificate's ``target`` claim."""
        return f"{self.location}#{self.key}"

    def with_location(self, location: str, key: str | None = None) -> StoreURI:
        """The single-credential URI at ``location`` (used by listings)."""
        return StoreURI(
            scheme=self.scheme,
            location=location,
            key=key or self.key,
            explicit_key=True,
            prefix=False,
        )

    def target(self, system: str, version: str | None, scope: StoreScope | None = None) -> Target:
        """The certificate's ``target``: this URI, the version, and which store (``scope``)."""
        return Target(
            system=system,
            path=self.target_path,
            version=version,
            address=None if scope is None else scope.address,
            namespace=None if scope is None else scope.namespace,
        )


def _normal_address(address: str) -> str:
    """``https://Vault.example:443/`` and ``https://vault.example`` compare equal."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address.strip())
        port = parts.port
    except ValueError:
        return address.strip().rstrip("/")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class StoreScope:
    """Which store a backend instance talks to, beyond what a URI names.

    Vault: its address and namespace (``vault://secret/app/db`` exists in every Vault and
    every namespace). A backend that has one exposes it as its ``scope`` attribute; it goes
    into the certificate's ``target`` and every credential the backend reads.
    """

    address: str
    namespace: str | None = None

    def __post_init__(self) -> None:
        namespace = (self.namespace or "").strip("/") or None
        object.__setattr__(self, "namespace", namespace)

    def differs_from(self, target: Target) -> str | None:
        """Why ``target`` names another store than this one (None: the same, or not recorded).

        Certificates from before the scope was recorded have no ``address``: not compared.
        """
        if target.address is None:
            return None
        if _normal_address(target.address) != _normal_address(self.address):
            return f"certified in the store at {target.address}, found at {self.address}"
        theirs = (target.namespace or "").strip("/") or None
        if theirs != self.namespace:
            return (
                f"certified in namespace {theirs or '(root)'}, found in "
                f"{self.namespace or '(root)'}"
            )
        return None


@runtime_checkable
class LocationGrammar(Protocol):
    """The location part of one scheme's URIs, owned by its backend.

    A backend class exposes it as its ``locations`` attribute. :meth:`check`
    runs after the generic checks (ASCII, no whitespace, ``?``, ``%`` or
    leading ``/``; a trailing ``/`` removed), so it sees only the location.
    """

    @property
    def form(self) -> str:
        """The single-credential form shown in error messages (``vault://MOUNT/PATH#KEY``)."""
        ...

    @property
    def incomplete(self) -> str:
        """Why a prefix names no single credential (``expected MOUNT/PATH``), for messages."""
        ...

    def check(self, location: str) -> bool:
        """True when ``location`` names one credential, False when it is only a prefix.

        Raises:
            ValueError: the location is malformed; the message says why (one
                line, no secret: it is shown to the user after the URI).
        """
        ...


def check_segments(segments: Sequence[str], what: str) -> None:
    """Check ``/``-separated segments of letters, digits and ``- _ . @ + =``.

    A helper for backends' grammars (Vault paths use it).

    Raises:
        ValueError: an empty, ``.``/``..`` or badly spelled segment.
    """
    for seg in segments:
        if not seg:
            raise ValueError(f"empty {what} segment (doubled or leading '/')")
        if seg in (".", "..") or not _SEGMENT.fullmatch(seg):
            raise ValueError(
                f"{what} segment {seg[:40]!r} may only hold letters, digits and - _ . @ + = "
                "(and is not '.' or '..')"
            )


@dataclass(frozen=True)
class _GenericLocations:
    form: str = "SCHEME://LOCATION#KEY"
    incomplete: str = "missing the location"

    def check(self, location: str) -> bool:
        if location and not _GENERIC_LOCATION.fullmatch(location):
            raise ValueError("the location holds characters outside printable ASCII")
        return bool(location)


#: The grammar of a scheme whose backend brings none.
GENERIC_LOCATIONS: LocationGrammar = _GenericLocations()


def bad_uri(text: str, why: str, forms: Sequence[str]) -> InvalidStoreURI:
    shown = text if len(text) <= 120 else text[:117] + "..."
    expected = ", ".join(forms[:-1]) + (" or " if len(forms) > 1 else "") + forms[-1]
    return InvalidStoreURI(f"invalid store URI {shown!r}: {why} (expected {expected})")
