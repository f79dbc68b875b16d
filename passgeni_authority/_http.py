"""uvicorn's httptools protocol, answering the issuance endpoints without ASGI.

Every request uvicorn serves goes through a ``RequestResponseCycle``, an
``asyncio.Event``, the ASGI ``receive``/``send`` messages and a header check
per response header: about 25 us of CPU per request here, more than our
whole ``POST /api/generate`` handler. Issuance is two requests per
certificate, so :class:`AuthorityHttpProtocol` answers the hot endpoints
(``_AuthorityApp.hot_raw``) itself: it keeps the request's headers and body
as the parser delivers them, runs the same handler the ASGI path runs
(``_app.answer``) in a task, and writes the status line, headers and body
in one ``write``. Measured with a constant answer: 35 us of server CPU per
request through uvicorn's path, 18 us through this one.

Only plain requests take it: ``POST`` to a hot path's exact target, HTTP/1.1
keep-alive, no ``Expect: 100-continue``, no upgrade, no earlier request of
the connection still being answered. Everything else (pipelined requests
behind one in flight, ``Connection: close``, HTTP/1.0, query strings, every
other endpoint) is uvicorn's own path, which reaches the same handlers
through ASGI. The connection's bookkeeping stays uvicorn's: a request in
flight sits in ``self.cycle`` as a :class:`_HotCycle` (so pipelining,
disconnects and graceful shutdown treat it like any other), its task is in
the server's task set (shutdown waits for it), and the answer ends with
uvicorn's ``on_response_complete`` (keep-alive timer, next pipelined
request); an answer waits, as uvicorn's do, while the client is not
reading (write flow control). The access log line, when enabled, is
uvicorn's. A uvicorn whose connection state differs from what this relies
on (:data:`_UVICORN_STATE`, checked per connection) serves every request
through its own path.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from ._app import _Call, _Hot, answer

__all__ = ["AuthorityHttpProtocol"]


class _HotCycle:
    """A hot request being answered, where uvicorn keeps its ``RequestResponseCycle``.

    uvicorn's connection code reads and sets ``response_complete``,
    ``disconnected`` and ``keep_alive`` on whatever ``self.cycle`` holds, and
    calls ``cycle.message_event.set()`` when the connection is lost (to wake
    a handler reading the body); the body here is complete before the
    handler starts, so nothing waits on that event.
    """

    __slots__ = (
        "chunks",
        "disconnected",
        "endpoint",
        "handler",
        "headers",
        "keep_alive",
        "response_complete",
        "size",
    )

    def __init__(self, handler: _Hot, endpoint: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.handler = handler
        self.endpoint = endpoint
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0
        self.response_complete = False
        self.disconnected = False
        self.keep_alive = True

    @property
    def message_event(self) -> _HotCycle:
        return self

    def set(self) -> None:
        """``message_event.set()``: nobody waits on a hot request's body."""


#: uvicorn's per-connection state the fast path reads and drives (as of uvicorn 0.54).
_UVICORN_STATE = ("cycle", "pipeline", "tasks", "flow", "access_log", "access_logger", "client")


def _uvicorn_state_present(protocol: HttpToolsProtocol) -> bool:
    return all(hasattr(protocol, name) for name in _UVICORN_STATE) and callable(
        getattr(protocol, "on_response_complete", None)
    )


class AuthorityHttpProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=...)``: the hot endpoints answered without ASGI.

    Any other app (or ours wrapped in uvicorn's middleware, e.g. at ``trace``
    log level) is served exactly as by :class:`HttpToolsProtocol`.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        hot: dict[bytes, tuple[_Hot, str]] = getattr(self.app, "hot_raw", None) or {}
        # uvicorn answers 503 itself beyond limit_concurrency: only its path
        # knows how. And a uvicorn whose connection state is not the one this
        # class was written against (see _UVICORN_STATE) serves everything.
        usable = self.limit_concurrency is None and _uvicorn_state_present(self)
        self._hot = hot if usable else {}
        self._body_limit: int = getattr(self.app, "body_limit", 0)

    def on_headers_complete(self) -> None:
        route = self._hot.get(self.url) if self._hot else None
        parser = self.parser
        if (
            route is not None
            and parser.get_method() == b"POST"
            and (self.cycle is None or self.cycle.response_complete)
            and not self.expect_100_continue
            and parser.get_http_version() == "1.1"
            and parser.should_keep_alive()
            and not parser.should_upgrade()
        ):
            # The cycle keeps its own reference to the header list: the
            # parser's next message starts a new one.
            # uvicorn types the slot as its own cycle class; ours stands in for it.
            self.cycle = cast(Any, _HotCycle(route[0], route[1], self.headers))
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if type(cycle) is _HotCycle:
            # Kept up to one chunk past the limit: enough to answer 413, and
            # memory stays bounded however much a client sends.
            if cycle.size <= self._body_limit:
                cycle.chunks.append(body)
            cycle.size += len(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle
        if type(cycle) is _HotCycle:
            task = self.loop.create_task(self._answer(cycle))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            return
        super().on_message_complete()

    async def _answer(self, cycle: _HotCycle) -> None:
        call = _Call(cycle.headers, self.client, cycle.endpoint, body=(cycle.chunks, cycle.size))
        status, body, headers = await answer(cycle.handler, call)
        if self.flow.write_paused and not cycle.disconnected:
            # As uvicorn's send(): a client that does not read its answers is
            # not sent more (nor is its next request read) until it does.
            await self.flow.drain()
        cycle.response_complete = True
        if cycle.disconnected or self.transport.is_closing():
            return
        if self.access_log:  # uvicorn's line (its AccessFormatter unpacks these five)
            method, _, path = cycle.endpoint.partition(" ")
            client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', client, method, path, "1.1", status)
        head = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        if not cycle.keep_alive:  # the server is shutting down (uvicorn's shutdown())
            head.append(b"connection: close\r\n")
        head += [b"\r\n", body]
        self.transport.write(b"".join(head))
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()
