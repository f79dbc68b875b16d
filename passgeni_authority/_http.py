"""uvicorn's httptools protocol, able to send a response's head with its body.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start``, and the body when it sends ``http.response.body``:
two ``send`` calls, and on loopback two wake-ups of the client, per
response. The issuance endpoints answer in one piece, so they ask (through
the ``passgeni.hold_head`` scope extension) for the head to be held back and
written together with the body. Nothing else changes: other responses, and
servers without the extension, are written as uvicorn writes them.
Measured on the two-step flow: ~5% less server CPU per certificate.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ._app import HOLD_HEAD

__all__ = ["OneWriteHttpToolsProtocol"]


class _HeldTransport:
    """A transport whose next write can be held and joined to the one after it."""

    __slots__ = ("_held", "_hold", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._hold = False
        self._held: bytes | None = None

    def hold_next(self) -> None:
        self._hold = True

    def write(self, data: bytes) -> None:
        if self._hold:
            self._hold = False
            self._held = data
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:  # never lose a written head
            self._transport.write(self._held)
            self._held = None
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=...)``: adds :data:`HOLD_HEAD` to every request's scope."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own signature (uvicorn narrows it); the wrapper stands in
        # for the transport by delegation, hence the cast.
        held = _HeldTransport(cast(asyncio.Transport, transport))
        super().connection_made(cast(asyncio.Transport, held))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        held: Any = self.transport
        self.scope["extensions"] = {HOLD_HEAD: held.hold_next}
