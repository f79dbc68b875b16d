"""The issuance endpoints over plain ASGI: reading a request, answering it.

Every certificate costs two requests to the issuance endpoints (``POST
/api/generate`` then ``/api/generate-certificate``, or their batch twins).
Each of the four is a Starlette ``Route`` whose endpoint is an
:class:`IssuanceEndpoint`: a plain ASGI callable (``scope``, ``receive``,
``send``). It is routed like every other endpoint and runs inside the app's
whole middleware stack, including anything added later with
``app.add_middleware`` (CORS, TrustedHost, tracing). What it leaves out is
what issuance does not need and the other endpoints pay for on every
request: Starlette's ``Request`` (all headers parsed into a mapping),
FastAPI's dependency resolution and response validation.

The rules the contract states for a body hold exactly, here as on every
other endpoint (:func:`parse_json_object`): at most ``max_body_bytes``, a
JSON object, no duplicate keys, no NaN/Infinity, messages from the core's
validators.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import orjson

from passgeni_core import AuthorityError, InvalidRequest, PassgeniError, RateLimited

from . import _ratelimit
from ._metrics import note_refusal

__all__ = [
    "BodyTooLarge",
    "Call",
    "Handler",
    "IssuanceEndpoint",
    "RequestTimeout",
    "answer",
    "client_ip",
    "dumps",
    "dumps_flat",
    "parse_json_object",
    "read_body",
]

log = logging.getLogger("passgeni_authority.http")


class BodyTooLarge(InvalidRequest):
    """Same public code as InvalidRequest, answered with 413."""

    http_status = 413


class RequestTimeout(InvalidRequest):
    """A body that did not arrive in time: same public code, answered with 408."""

    http_status = 408


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidRequest(f"duplicate JSON key {key[:40]!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not valid JSON")


# One decoder for every request: json.loads with hooks builds a new decoder
# (and its C scanner) on every call.
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Strictly parse a request body.

    Raises:
        InvalidRequest: not UTF-8, not JSON, duplicate keys, NaN/Infinity,
            or not a JSON object.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not UTF-8") from None
    try:
        data = _STRICT_JSON.decode(text)
    except ValueError:
        raise InvalidRequest("the request body is not valid JSON") from None
    except RecursionError:
        raise InvalidRequest("the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def client_ip(
    peer: str | None, forwarded_for: Callable[[], str], trusted: frozenset[str]
) -> str | None:
    """The peer address, or with a trusted proxy in front, the nearest untrusted
    address in ``X-Forwarded-For`` (the rightmost one a client cannot forge).

    ``forwarded_for`` is only called for a trusted peer.
    """
    if peer is None or peer not in trusted:
        return peer
    forwarded = forwarded_for()
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if hop not in trusted:
            return hop
    return peer


class Call:
    """What an issuance endpoint needs from one request: read from the ASGI
    scope on demand (a handler looks at three headers at most)."""

    __slots__ = ("_receive", "client", "endpoint", "headers")

    def __init__(self, scope: Any, receive: Any, endpoint: str) -> None:
        self.headers: list[tuple[bytes, bytes]] = scope["headers"]
        self.client: tuple[str, int] | None = scope.get("client")
        #: ``"POST /api/generate"``: the route, as rate limits and the audit name it.
        self.endpoint = endpoint
        self._receive = receive

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    def bearer(self) -> str | None:
        scheme, _, credential = (self.header(b"authorization") or "").partition(" ")
        return credential.strip() if scheme.lower() == "bearer" else None

    def ip(self, trusted: frozenset[str]) -> str | None:
        peer = self.client[0] if self.client else None
        return client_ip(peer, lambda: self.header(b"x-forwarded-for") or "", trusted)

    async def body(self, limit: int, seconds: float) -> dict[str, Any] | PassgeniError:
        """The JSON object body, or the error it gives (see :func:`read_body`).

        Returned, not raised: the service answers an unauthenticated caller
        401 before it judges the body.
        """
        raw = await read_body(self._receive, self.header(b"content-length"), limit, seconds)
        if isinstance(raw, PassgeniError):
            return raw
        try:
            return parse_json_object(raw)
        except PassgeniError as exc:
            return exc


async def read_body(
    receive: Callable[[], Awaitable[Any]], declared: str | None, limit: int, seconds: float
) -> bytes | PassgeniError:
    """A request's body as every endpoint reads it: at most ``limit`` bytes (413,
    before a byte is read when the declared length is over), arriving within
    ``seconds`` of the first read (408: a client trickling a body, or declaring
    one it never sends, must not hold a connection and its buffer for ever), or
    the client gone. Returned, not raised (see :meth:`Call.body`)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    try:
        async with asyncio.timeout(seconds):
            message = await receive()
            if message["type"] != "http.request":
                return _gone()
            raw: bytes = message.get("body", b"")
            if message.get("more_body", False):  # a body in several messages (chunked, large)
                chunks = [raw]
                size = len(raw)
                while True:
                    if size > limit:
                        return _too_large(limit)
                    message = await receive()
                    if message["type"] != "http.request":
                        return _gone()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                raw = b"".join(chunks)
    except TimeoutError:
        return RequestTimeout(f"the request body did not arrive within {seconds:g} s")
    if len(raw) > limit:
        return _too_large(limit)
    return raw


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request bodies are limited to {limit} bytes")


def _gone() -> InvalidRequest:
    return InvalidRequest("the client went away before sending its body")


#: An issuance endpoint: the request in, ``(status, JSON body)`` out; errors raised.
Handler = Callable[[Call], Awaitable[tuple[int, bytes]]]


_ENCODER = msgspec.json.Encoder()


def dumps(data: Any) -> bytes:
    """JSON as JSONResponse writes it (compact, UTF-8): a wire Struct
    (``passgeni_core.client``) or plain JSON-ready data.

    msgspec, not ``json``: a batch answer is ~150 KB of JSON, and the answers
    of the issuance endpoints are most of what the authority serialises; it
    encodes the Structs directly, with no dictionary in between. Our answers
    never hold NaN (which msgspec would write as null, where JSONResponse
    raises).
    """
    return _ENCODER.encode(data)


def dumps_flat(data: msgspec.Struct) -> bytes:
    """:func:`dumps` of a Struct whose fields hold no Struct, UNSET or time:
    the same bytes, through orjson, whose string encoder is several times
    faster on long strings (the answer to a session batch is a list of
    a thousand 200-character tokens)."""
    return orjson.dumps(msgspec.structs.asdict(data))


_JSON_TYPE = (b"content-type", b"application/json")
_JSON_HEADERS = (_JSON_TYPE,)


def _error_body(exc: PassgeniError) -> tuple[int, bytes, Sequence[tuple[bytes, bytes]]]:
    note_refusal(exc.code)
    headers = [_JSON_TYPE]
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers.append((b"retry-after", _ratelimit.retry_after_header(exc.retry_after).encode()))
    return exc.http_status, dumps(exc.to_dict()), headers


async def answer(handler: Handler, call: Call) -> tuple[int, bytes, Sequence[tuple[bytes, bytes]]]:
    """Run an issuance endpoint: ``(status, body, headers)``, errors as ``{code, message}``.

    Never raises (but for cancellation): an unexpected error is logged and
    answered as a 500 ``authority_error``, as the app's exception handler
    answers one on any other endpoint.
    """
    try:
        status, body = await handler(call)
    except PassgeniError as exc:
        return _error_body(exc)
    except Exception as exc:
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return _error_body(AuthorityError("internal error"))
    return status, body, _JSON_HEADERS


async def _not_ready(_call: Call) -> tuple[int, bytes]:
    raise AuthorityError("this endpoint has no handler yet")


class IssuanceEndpoint:
    """One issuance endpoint as an ASGI app: the endpoint of its ``Route``.

    Starlette treats an endpoint that is neither a function nor a method as
    an ASGI application and calls it with the route's scope; the route has
    already checked the method (anything but ``POST`` is a 405). The
    ``handler`` may be set after the route is made (``create_app`` gives the
    routes to FastAPI before it defines the handlers).
    """

    __slots__ = ("endpoint", "handler")

    def __init__(self, endpoint: str, handler: Handler = _not_ready) -> None:
        self.endpoint = endpoint
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status, body, headers = await answer(self.handler, Call(scope, receive, self.endpoint))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
