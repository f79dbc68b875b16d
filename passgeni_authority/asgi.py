"""``passgeni_authority.asgi:app``: the whole authority for any ASGI server.

::

    uvicorn passgeni_authority.asgi:app --host 0.0.0.0 --port 8787
    granian --interface asgi passgeni_authority.asgi:app --host 0.0.0.0 --port 8787

Configured from the environment ``passgeni authority serve`` reads (see
:func:`passgeni_authority.cli.settings_from_environment`):
``PASSGENI_DATABASE_URL``, ``PASSGENI_STATE_DIR``, ``PASSGENI_PUBLIC_URL``,
``PASSGENI_ISSUER`` (the certificates' ``iss``; default the public URL),
``PASSGENI_TRANSIT_URL``/``PASSGENI_TRANSIT_KEY`` with the token in
``PASSGENI_TRANSIT_TOKEN`` or ``VAULT_TOKEN``, ``PASSGENI_TRUSTED_PROXIES``,
``PASSGENI_FIPS_FLAG_PATH``.

Importing this module reads nothing and opens nothing: the settings are
read, the database migrated and the signing key loaded when the server
starts the app (the ASGI lifespan ``startup``), and the store is closed at
``shutdown``. A bad configuration fails the startup with a one-line
message, and the server exits. A server that does not run the lifespan
protocol gets a 503 ``authority_unavailable`` answer to every request.

To add middleware, build the app yourself, the same way::

    from passgeni_authority import create_app
    from passgeni_authority.cli import settings_from_environment

    app = create_app(settings_from_environment())  # opens the store now
    app.add_middleware(...)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from passgeni_core import AuthorityUnavailable, PassgeniError

__all__ = ["LifespanApp", "app"]

log = logging.getLogger("passgeni_authority.asgi")


def _from_environment() -> Any:
    from ._app import create_app
    from .cli import settings_from_environment

    return create_app(settings_from_environment())


class LifespanApp:
    """An ASGI app that builds the app it serves at lifespan startup.

    ``factory`` is called once, when the server sends ``lifespan.startup``;
    the app it returns then receives that lifespan (its own startup and
    shutdown run as usual) and every request.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self._app
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._start(scope, receive, send)
        elif scope["type"] == "http":
            await _unavailable(send)
        # Anything else (a websocket) before startup: refused by returning.

    async def _start(self, scope: Any, receive: Any, send: Any) -> None:
        first = await receive()
        if first["type"] != "lifespan.startup":  # a shutdown before any startup
            await send({"type": "lifespan.shutdown.complete"})
            return
        try:
            self._app = self._factory()
        except PassgeniError as exc:
            await send({"type": "lifespan.startup.failed", "message": _one_line(exc)})
            return
        except Exception as exc:
            # The traceback stays in the server log; it may hold a database URL.
            log.error("the authority failed to start", exc_info=exc)
            message = f"the authority failed to start ({type(exc).__name__})"
            await send({"type": "lifespan.startup.failed", "message": message})
            return
        pending: list[Any] = [first]

        async def replay() -> Any:
            return pending.pop() if pending else await receive()

        await self._app(scope, replay, send)


def _one_line(exc: PassgeniError) -> str:
    return f"passgeni: error [{exc.code}]: {exc.message}"


async def _unavailable(send: Any) -> None:
    from ._issuance_http import dumps

    error = AuthorityUnavailable("the authority starts with the ASGI lifespan; enable it")
    body = dumps(error.to_dict())
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: The authority, configured from the environment at startup.
app = LifespanApp(_from_environment)
