"""One provider process's connections: the authority client and one store per scheme.

Terraform starts the provider process a few times per command and sends
every resource of the command to the same process: the client (and its
cached JWKS) and each store connection are opened once, on first use, and
closed when the process exits. Settings come from the provider block
(:class:`Settings`) over the environment the CLI reads (``PASSGENI_URL``,
``PASSGENI_API_KEY``, ``PASSGENI_ISSUER``, the config file; ``VAULT_ADDR``/
``VAULT_TOKEN``, the AWS SDK chain, kubeconfig for the stores). The API key
is never a provider attribute: provider values can land in saved plan files.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # imported when first used: the schema-only provider processes never do
    from passgeni_core import AuthorityClient, SecretStore, StoreURI

__all__ = ["Runtime", "Settings", "describe", "runtime"]


@dataclass(frozen=True)
class Settings:
    """The provider block (no secret: the API key comes from the environment only)."""

    authority_url: str | None = None
    issuer: str | None = None
    timeout: float | None = None


class Runtime:
    """The process's authority client and stores, opened lazily, closed at exit."""

    def __init__(self) -> None:
        self.settings = Settings()
        self._stack = contextlib.ExitStack()
        self._client: AuthorityClient | None = None
        self._stores: dict[tuple[str, tuple[tuple[str, str], ...]], SecretStore] = {}
        self._lock = threading.RLock()

    def configure(self, settings: Settings) -> None:
        with self._lock:
            self.settings = settings

    def client(self) -> AuthorityClient:
        """The authority client (fails closed when no authority is configured)."""
        from passgeni_core import connect, resolve_config

        with self._lock:
            if self._client is None:
                config = resolve_config(
                    url=self.settings.authority_url,
                    timeout=self.settings.timeout,
                    issuer=self.settings.issuer,
                    environ=os.environ,
                    url_option='the provider\'s authority_url (or "embedded")',
                    embedded_option='authority_url = "embedded"',
                ).require_authority()
                self._client = self._stack.enter_context(connect(config))
            return self._client

    def store(self, uri: StoreURI, options: Mapping[str, str] | None = None) -> SecretStore:
        """A connected store for ``uri``'s scheme and the resource's checked store options
        (one per scheme and options, per process)."""
        from passgeni_core import open_store

        key = (uri.scheme, tuple(sorted((options or {}).items())))
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                store = open_store(uri, **(options or {}))
                self._stack.callback(store.close)
                self._stores[key] = store
            return store

    def close(self) -> None:
        with self._lock:
            self._client = None
            self._stores.clear()
            with contextlib.suppress(Exception):
                self._stack.close()
            self._stack = contextlib.ExitStack()


_RUNTIME = Runtime()
atexit.register(_RUNTIME.close)


def runtime() -> Runtime:
    """The process's :class:`Runtime`."""
    return _RUNTIME


_SCHEMES: list[str] = []


def _schemes() -> list[str]:
    """The installed backends' schemes but ``memory``, looked up once per process: the
    lookup reads every installed distribution's entry points (~20-50 ms), and a plan
    validates and refreshes every resource."""
    from passgeni_core import available_schemes

    if not _SCHEMES:
        _SCHEMES.extend(s for s in available_schemes() if s != "memory")
    return _SCHEMES


def parse_destination(text: str) -> StoreURI:
    """A store URI with a key (``vault://MOUNT/PATH#KEY``...) of an installed backend.

    Raises:
        InvalidStoreURI / InvalidRequest: malformed, or no backend for its scheme (the
            in-process ``memory`` store is refused: it forgets everything between the
            provider processes of one Terraform command).
    """
    from passgeni_core import InvalidRequest, parse_store_uri

    uri = parse_store_uri(text)
    schemes = _schemes()
    if uri.scheme not in schemes:
        raise InvalidRequest(
            f"no store backend for {uri.scheme!r}:// (installed: "
            f"{', '.join(s + '://' for s in schemes) or 'none'})"
        )
    return uri


def describe(exc: BaseException) -> tuple[str, str]:
    """(summary, detail) for a diagnostic: our message, or only the type of anything else."""
    from passgeni_core import PassgeniError

    if isinstance(exc, PassgeniError):
        return f"passgeni: {exc.code}", exc.message
    # Not ours: name the type only (a library's message could echo a value).
    return "passgeni: internal_error", f"unexpected {type(exc).__name__}; please report it"


class _Quiet:
    """The real stdout while any refresh or apply runs (refreshes overlap, in threads)."""

    lock = threading.Lock()
    depth = 0
    real: TextIO | None = None


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Nothing may reach the plugin's stdout but the handshake: a stray print goes to stderr.

    Counted: refreshes run in worker threads at the same time, and the last one out puts
    the real stdout back."""
    import sys

    with _Quiet.lock:
        if _Quiet.depth == 0:
            _Quiet.real, sys.stdout = sys.stdout, sys.stderr
        _Quiet.depth += 1
    try:
        yield
    finally:
        with _Quiet.lock:
            _Quiet.depth -= 1
            if _Quiet.depth == 0 and _Quiet.real is not None:
                sys.stdout, _Quiet.real = _Quiet.real, None


def as_diagnostic(exc: BaseException) -> Exception:
    """An exception pyvider turns into a diagnostic with our summary and detail (one line)."""
    from pyvider.exceptions import ResourceError

    summary, detail = describe(exc)
    error = ResourceError(detail)
    error.add_context("terraform.summary", summary)
    return error
