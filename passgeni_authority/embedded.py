"""The authority embedded in the current process, for zero-setup local use.

``EmbeddedAuthority`` serves the very same app as ``passgeni authority serve``
with uvicorn in a background thread on 127.0.0.1, on a SQLite store in a
state directory, so ``passgeni provision`` works on a fresh machine with no
server and no network. It makes sure a local user and API key exist; the key
is kept in the state directory with mode 0600.

Embedded differences from a served authority, and why:

* ``fips_strict=False``, FIPS rule ``lenient-v1``: nobody can prove FIPS mode
  on an ordinary laptop; the certificate names the rule and records what did
  not hold (``provenance.fips_unverified``, see ``passgeni_core.model.FIPS_RULES``).
* No rate limits: the only client is the local user on the loopback interface.
* A marked, stable issuer: ``embedded:<id>``, the id drawn once per state
  directory (kept in it, see :data:`ID_FILE`). Nobody else can reach this
  authority, so its certificates must never pass for an authority's an
  auditor could ask: the issuer is not a URL, and the certificate page, ``passgeni
  verify`` and a scan say "issued by an embedded, throwaway authority"
  (``passgeni_core.model.EMBEDDED_ISSUER_NOTE``). It is stable because the
  port is ephemeral but certificates must verify in later runs on the same
  state directory.

Given ``public_url``, ``issuer_is_base_url=True`` (the served address, so
certificate URLs resolve while this process runs) or ``settings``, the class
is simply the served authority run in this process, issuer and all (tests,
examples and benchmarks use it so).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from passgeni_core import AuthorityError, AuthorityUnavailable
from passgeni_core.model import EMBEDDED_ISSUER_PREFIX, is_embedded_issuer

from ._app import create_app
from ._service import AuthorityService
from ._settings import AuthoritySettings, RateLimits, default_state_dir

__all__ = ["API_KEY_FILE", "ID_FILE", "EmbeddedAuthority"]

log = logging.getLogger("passgeni_authority.embedded")

#: The local API key, inside the state directory (mode 0600).
API_KEY_FILE = "embedded-api-key"
#: The embedded authority's id (its issuer is ``embedded:<id>``), inside the state directory.
ID_FILE = "embedded-id"
LOCAL_USER = "local"
#: Requests per minute of the local key: high enough for bulk local rotation.
LOCAL_KEY_RATE_LIMIT = 1_000_000


def _write_private(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` atomically, 0600 from the first byte."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class EmbeddedAuthority:
    """Run the authority in-process; a context manager.

    ``with EmbeddedAuthority() as authority:`` starts uvicorn on
    ``authority.base_url`` and stops it on exit. ``authority.api_key`` is the
    local user's key, ``authority.service`` the :class:`AuthorityService`.

    ``settings``, when given, replaces the embedded defaults entirely. The
    issuer is ``public_url`` if passed, else the served ``base_url`` with
    ``issuer_is_base_url=True``, else ``settings.public_url`` if ``settings``
    are given, else the marked ``embedded:<id>`` of the state directory
    (stable across runs).

    Raises (``start``):
        AuthorityUnavailable: the port cannot be bound or the server did not start.
        AuthorityError: the store or the signing key cannot be set up.
    """

    def __init__(
        self,
        *,
        state_dir: Path | str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        public_url: str | None = None,
        settings: AuthoritySettings | None = None,
        issuer_is_base_url: bool = False,
        startup_timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port or 0
        self._public_url = public_url
        self._issuer_is_base_url = issuer_is_base_url
        self._settings = settings
        self.state_dir = Path(
            state_dir
            if state_dir is not None
            else (settings.state_dir if settings is not None else default_state_dir())
        )
        self.startup_timeout = startup_timeout
        self._service: AuthorityService | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._api_key: str | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        # Never the API key.
        state = "running" if self.running else "stopped"
        return f"EmbeddedAuthority(base_url={self.base_url!r}, state_dir={str(self.state_dir)!r}, {state})"

    # -- public properties ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        """The certificates' ``iss`` (stable across runs unless ``issuer_is_base_url``)."""
        return self.service.settings.effective_issuer

    @property
    def api_key(self) -> str:
        if self._api_key is None:
            raise AuthorityUnavailable("the embedded authority is not started")
        return self._api_key

    @property
    def service(self) -> AuthorityService:
        if self._service is None:
            raise AuthorityUnavailable("the embedded authority is not started")
        return self._service

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _make_settings(self) -> AuthoritySettings:
        base = self._settings or AuthoritySettings(
            state_dir=self.state_dir,
            fips_strict=False,
            rate_limits=RateLimits.unlimited(),
        )
        if self._public_url:
            return dataclasses.replace(base, public_url=self._public_url)
        if self._issuer_is_base_url:
            return dataclasses.replace(base, public_url=self.base_url)
        if self._settings is not None:
            return base
        return dataclasses.replace(base, public_url=EMBEDDED_ISSUER_PREFIX + self._embedded_id())

    def _embedded_id(self) -> str:
        """This state directory's id: drawn once, then read back (the issuer must stay put)."""
        path = self.state_dir / ID_FILE
        try:
            stored = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            # Written whole beside it, then linked into place: the link fails if a
            # concurrent first start won, and then everybody reads the winner's id.
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            _write_private(tmp, secrets.token_hex(8) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
            stored = path.read_text(encoding="utf-8").strip()
        if not is_embedded_issuer(EMBEDDED_ISSUER_PREFIX + stored):
            raise AuthorityError(
                f"{path} does not hold an embedded authority id; remove it to draw a new one "
                "(certificates issued under the old id then no longer verify here)"
            )
        return stored

    def _ensure_key(self, service: AuthorityService) -> str:
        path = self.state_dir / API_KEY_FILE
        try:
            stored = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            stored = ""
        if stored:
            info = service.lookup_api_key(stored)
            if info is not None and info.revoked_at is None:
                return stored
        created = service.create_api_key(LOCAL_USER, rate_limit=LOCAL_KEY_RATE_LIMIT)
        _write_private(path, created.key + "\n")
        return created.key

    def start(self) -> Self:
        """Start serving; returns once the server accepts connections."""
        import uvicorn

        if self.running:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise AuthorityUnavailable(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        self.port = sock.getsockname()[1]
        try:
            service = AuthorityService(self._make_settings())
            self._api_key = self._ensure_key(service)
        except BaseException:
            sock.close()
            raise
        self._service = service
        app = create_app(service=service)
        from ._workers import uvicorn_options

        config = uvicorn.Config(
            app,
            # The served options (no proxy headers: the authority's own
            # trusted_proxies apply), quieter.
            **uvicorn_options("warning"),
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        self._server = server
        # Bound before the thread starts: no race for the port, and a port of 0
        # is known (self.port) before anything is served.
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="passgeni-authority", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise AuthorityUnavailable(
                    f"the embedded authority did not start on {self.base_url}"
                )
            time.sleep(0.01)
        self._socket = sock
        log.info("embedded authority serving on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and close the store. No-op when not running."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._server = None
        sock = getattr(self, "_socket", None)
        if sock is not None:
            sock.close()
            self._socket = None
        if self._service is not None:
            self._service.close()
            self._service = None
