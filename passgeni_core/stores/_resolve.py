"""Resolving a destination: parse it with its backend's grammar, open its backend."""

from __future__ import annotations

from typing import Any

from .._errors import InvalidStoreURI
from ._protocol import SecretStore
from ._registry import available_schemes, location_grammar, store_class
from ._uri import DEFAULT_KEY, FIELD_MARK, KEY, MAX_URI, SCHEME, StoreURI, bad_uri


def _installed_forms() -> list[str]:
    """The single-credential forms of every installed backend (for messages only)."""
    forms = []
    for scheme in available_schemes():
        form = location_grammar(scheme).form
        forms.append(form if form.startswith(f"{scheme}://") else f"{scheme}://LOCATION#KEY")
    return forms or ["SCHEME://LOCATION#KEY"]


def parse_store_uri(uri: str | StoreURI, *, allow_prefix: bool = False) -> StoreURI:
    """Parse a destination URI (see :mod:`passgeni_core.stores` for the grammar).

    ``allow_prefix`` accepts the listing form (``vault://secret/app``,
    ``aws-sm://``, ``k8s://ns``) as well; the result then has ``prefix=True``
    unless it is a complete single-credential URI.

    Raises:
        InvalidStoreURI: the URI does not follow the grammar (the message says why).
    """
    if isinstance(uri, StoreURI):
        if uri.prefix and not allow_prefix:
            raise bad_uri(str(uri), "a prefix names no single credential", _installed_forms())
        return uri
    if not isinstance(uri, str):
        raise InvalidStoreURI("a store URI must be a string")
    text = uri

    def bad(why: str) -> InvalidStoreURI:
        return bad_uri(text, why, _installed_forms())

    if len(text) > MAX_URI:
        raise bad(f"longer than {MAX_URI} characters")
    if not text.isascii() or any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise bad("contains whitespace, control or non-ASCII characters")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise bad("missing '://'")
    if not SCHEME.fullmatch(scheme):
        raise bad(f"scheme {scheme[:40]!r} is not a lower-case URI scheme")
    location, hash_sep, key = rest.partition("#")
    explicit_key = bool(hash_sep)
    if explicit_key:
        if not key:
            raise bad("empty key after '#'")
        if not KEY.fullmatch(key):
            raise bad("the key may only hold letters, digits, '-', '_' and '.' (1-128)")
        if FIELD_MARK in key:
            raise bad(f"the key may not contain {FIELD_MARK!r} (reserved)")
    else:
        key = DEFAULT_KEY
    if "?" in location:
        raise bad("query strings are not allowed")
    if "%" in location:
        raise bad("percent-encoding is not allowed")
    trailing = location.endswith("/")
    loc = location.rstrip("/") if trailing else location
    if loc.startswith("/"):
        raise bad("the location may not start with '/'")
    grammar = location_grammar(scheme)
    try:
        complete = grammar.check(loc)
    except ValueError as exc:
        raise bad_uri(text, str(exc), [grammar.form]) from None
    if complete and not trailing:
        return StoreURI(scheme, loc, key, explicit_key, False)
    if allow_prefix:
        return StoreURI(scheme, loc, key, explicit_key, True)
    raise bad_uri(text, grammar.incomplete, [grammar.form])


def open_store(uri: str | StoreURI, **options: Any) -> SecretStore:
    """A connected store for ``uri``'s scheme (prefix URIs allowed).

    ``options`` go to the backend (e.g. ``client=`` an existing SDK client,
    ``environ=`` a mapping to read configuration from instead of ``os.environ``).

    Raises:
        InvalidStoreURI / UnknownStoreScheme: a malformed URI or no backend for it.
        StoreError: the backend failed to load or to configure itself.
    """
    parsed = parse_store_uri(uri, allow_prefix=True)
    factory = store_class(parsed.scheme)
    store = factory(parsed, **options)
    return store
