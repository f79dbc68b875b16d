"""Store URIs: the one destination grammar (see ``_stores`` for the full docs).

Kept apart from ``_stores`` so that validating a destination imports nothing
heavy (no requests, no pyjwt): the Terraform program validates its input in
well under 150 ms this way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._claims import Target
from ._errors import InvalidStoreURI

__all__ = ["DEFAULT_KEY", "FIELD_MARK", "StoreURI", "parse_store_uri"]

DEFAULT_KEY = "password"
#: Reserved infix of the companion fields stored beside ``KEY``.
FIELD_MARK = ".passgeni-"
_FIELD_MARK = FIELD_MARK

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,31}")
_SEGMENT = re.compile(r"[A-Za-z0-9_.@+=-]+")
_AWS_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_K8S_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_K8S_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_KEY = re.compile(r"[A-Za-z0-9._-]{1,128}")
_GENERIC_LOCATION = re.compile(r"[\x21-\x7e]+")
_MAX_URI = 2048


# --- URIs ---------------------------------------------------------------------------------------


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

    def target(self, system: str, version: str | None) -> Target:
        return Target(system=system, path=self.target_path, version=version)


def _bad_uri(text: str, why: str) -> InvalidStoreURI:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return InvalidStoreURI(
        f"invalid store URI {shown!r}: {why} "
        "(expected vault://MOUNT/PATH#KEY, aws-sm://NAME#KEY or k8s://NAMESPACE/NAME#KEY)"
    )


def _check_segments(text: str, segments: list[str], what: str) -> None:
    for seg in segments:
        if not seg:
            raise _bad_uri(text, f"empty {what} segment (doubled or leading '/')")
        if seg in (".", "..") or not _SEGMENT.fullmatch(seg):
            raise _bad_uri(
                text,
                f"{what} segment {seg[:40]!r} may only hold letters, digits and - _ . @ + = "
                "(and is not '.' or '..')",
            )


def parse_store_uri(uri: str | StoreURI, *, allow_prefix: bool = False) -> StoreURI:
    """Parse a destination URI (see the module docstring for the grammar).

    ``allow_prefix`` accepts the listing form (``vault://secret/app``,
    ``aws-sm://``, ``k8s://ns``) as well; the result then has ``prefix=True``
    unless it is a complete single-credential URI.

    Raises:
        InvalidStoreURI: the URI does not follow the grammar (the message says why).
    """
    if isinstance(uri, StoreURI):
        if uri.prefix and not allow_prefix:
            raise _bad_uri(str(uri), "a prefix names no single credential")
        return uri
    if not isinstance(uri, str):
        raise InvalidStoreURI("a store URI must be a string")
    text = uri
    if len(text) > _MAX_URI:
        raise _bad_uri(text, f"longer than {_MAX_URI} characters")
    if not text.isascii() or any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise _bad_uri(text, "contains whitespace, control or non-ASCII characters")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise _bad_uri(text, "missing '://'")
    if not _SCHEME.fullmatch(scheme):
        raise _bad_uri(text, f"scheme {scheme[:40]!r} is not a lower-case URI scheme")
    location, hash_sep, key = rest.partition("#")
    explicit_key = bool(hash_sep)
    if explicit_key:
        if not key:
            raise _bad_uri(text, "empty key after '#'")
        if not _KEY.fullmatch(key):
            raise _bad_uri(text, "the key may only hold letters, digits, '-', '_' and '.' (1-128)")
        if _FIELD_MARK in key:
            raise _bad_uri(text, f"the key may not contain {_FIELD_MARK!r} (reserved)")
    else:
        key = DEFAULT_KEY
    if "?" in location:
        raise _bad_uri(text, "query strings are not allowed")
    if "%" in location:
        raise _bad_uri(text, "percent-encoding is not allowed")
    trailing = location.endswith("/")
    loc = location.rstrip("/") if trailing else location
    if loc.startswith("/"):
        raise _bad_uri(text, "the location may not start with '/'")

    def single(is_complete: bool, why: str) -> StoreURI:
        if is_complete and not trailing:
            return StoreURI(scheme, loc, key, explicit_key, False)
        if allow_prefix:
            return StoreURI(scheme, loc, key, explicit_key, True)
        raise _bad_uri(text, why)

    if scheme == "vault":
        segments = loc.split("/") if loc else []
        if not segments:
            raise _bad_uri(text, "missing MOUNT")
        _check_segments(text, segments, "path")
        return single(len(segments) >= 2, "expected MOUNT/PATH (a KV v2 mount and a path)")
    if scheme == "aws-sm":
        if loc and not _AWS_NAME.fullmatch(loc):
            raise _bad_uri(
                text,
                "an AWS secret name is 1-512 letters, digits and / _ + = . @ - (not an ARN)",
            )
        if "//" in loc:
            raise _bad_uri(text, "empty name segment ('//')")
        return single(bool(loc), "missing the secret NAME")
    if scheme == "k8s":
        segments = loc.split("/") if loc else []
        if not segments or len(segments) > 2:
            raise _bad_uri(text, "expected NAMESPACE/NAME")
        if not _K8S_LABEL.fullmatch(segments[0]):
            raise _bad_uri(
                text,
                "NAMESPACE must be an RFC 1123 label (lower-case letters, digits, '-', <= 63)",
            )
        if len(segments) == 2 and not _K8S_SUBDOMAIN.fullmatch(segments[1]):
            raise _bad_uri(
                text,
                "NAME must be an RFC 1123 subdomain (lower-case letters, digits, '-', '.', <= 253)",
            )
        if explicit_key and len(key) > 128:
            raise _bad_uri(text, "key longer than 128 characters")
        return single(len(segments) == 2, "expected NAMESPACE/NAME")
    # A third-party scheme: the generic grammar only.
    if loc and not _GENERIC_LOCATION.fullmatch(loc):
        raise _bad_uri(text, "the location holds characters outside printable ASCII")
    return single(bool(loc), "missing the location")
