"""The FastAPI app: a thin HTTP layer over :class:`AuthorityService`.

It only translates: headers and bodies in, JSON (or the certificate page)
out, and every error as ``{"code", "message"}`` with the status of the core's
exception class. No rule lives here.

Bodies are parsed by hand rather than by pydantic models so the rules the
contract states hold exactly: at most 64 KiB, a JSON object, no duplicate
keys, no NaN/Infinity, and the core's own validators produce the messages.
"""

# No `from __future__ import annotations`: FastAPI must see the real dependency
# types, and Caller/Body/IP are local to create_app().

import contextlib
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from passgeni_core import (
    AuthorityError,
    InvalidRequest,
    NotFound,
    PassgeniError,
    RateLimited,
)

from . import _ratelimit
from ._service import AuthorityService, Principal
from ._settings import AuthoritySettings

__all__ = ["create_app"]

log = logging.getLogger("passgeni_authority.http")


class BodyTooLarge(InvalidRequest):
    """Same public code as InvalidRequest, answered with 413."""

    http_status = 413


class MethodNotAllowed(InvalidRequest):
    http_status = 405


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
# (and its C scanner) per call, a third of the cost of parsing a small body.
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


def client_ip(request: Request, trusted: frozenset[str]) -> str | None:
    """The peer address, or with a trusted proxy in front, the nearest untrusted
    address in ``X-Forwarded-For`` (the rightmost one a client cannot forge)."""
    peer = request.client.host if request.client else None
    return _client_ip(peer, lambda: request.headers.get("x-forwarded-for", ""), trusted)


def _client_ip(
    peer: str | None, forwarded_for: Callable[[], str], trusted: frozenset[str]
) -> str | None:
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


_JSON_TYPE = (b"content-type", b"application/json")


class _Call:
    """What an issuance endpoint needs from one request.

    Built from the ASGI scope (:meth:`from_scope`, the routed and ASGI
    paths) or directly by the served protocol (``_http``), which answers the
    hot endpoints without ASGI and hands over the body it already read.
    Starlette's ``Request`` is not used: its header parsing alone cost ~20 us
    a request.
    """

    __slots__ = ("_body", "_receive", "client", "endpoint", "headers")

    def __init__(
        self,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        endpoint: str,
        *,
        receive: Any = None,
        body: tuple[list[bytes], int] | None = None,
    ) -> None:
        self.headers = headers
        self.client = client
        self.endpoint = endpoint
        self._receive = receive
        #: ``(chunks, size)`` read before the call, or None to read from ``receive``.
        self._body = body

    @classmethod
    def from_scope(cls, scope: Any, receive: Any) -> "_Call":
        return cls(
            scope["headers"],
            scope.get("client"),
            f"{scope['method']} {scope['path']}",
            receive=receive,
        )

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
        return _client_ip(peer, lambda: self.header(b"x-forwarded-for") or "", trusted)

    async def body(self, limit: int) -> dict[str, Any] | PassgeniError:
        """The JSON object body, or the error it gives (answered after authentication)."""
        if self._body is not None:
            chunks, size = self._body
            return _too_large(limit) if size > limit else _parsed(b"".join(chunks))
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        chunks = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                return InvalidRequest("the client went away before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return _parsed(b"".join(chunks))


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request bodies are limited to {limit} bytes")


def _parsed(raw: bytes) -> dict[str, Any] | PassgeniError:
    try:
        return parse_json_object(raw)
    except PassgeniError as exc:
        return exc


#: A hot endpoint: the request in, ``(status, JSON body)`` out; errors raised.
_Hot = Callable[[_Call], Awaitable[tuple[int, bytes]]]


def _dumps(data: Any) -> bytes:
    """JSON as JSONResponse writes it (compact, UTF-8).

    orjson, not ``json``: measured 0.5 us against 10 us for a certificate
    answer, and 19 us against 590 us for a batch of 100. Our answers never
    hold NaN (which orjson would write as null, where JSONResponse raises).
    """
    return orjson.dumps(data)


def _error_body(exc: PassgeniError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    headers = [_JSON_TYPE]
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers.append((b"retry-after", _ratelimit.retry_after_header(exc.retry_after).encode()))
    return exc.http_status, _dumps(exc.to_dict()), headers


class _AuthorityApp(FastAPI):
    """FastAPI, with the issuance endpoints answered before anything else.

    ``POST`` to a hot path goes straight to its handler: no routing,
    middleware, dependency injection or telemetry hooks, which together cost
    more than the handler itself. Errors keep the API's shape
    (``{code, message}`` with the class's status). The same paths are also
    ordinary FastAPI routes (for the OpenAPI document), running the same
    handlers. Served by our own protocol (``_http``), most hot requests do
    not reach this ASGI entry at all: the protocol calls :attr:`hot_raw`'s
    handlers itself.
    """

    hot: dict[str, _Hot]
    #: The hot endpoints by raw request target: ``(handler, "POST /path")``.
    hot_raw: dict[bytes, tuple[_Hot, str]]
    #: The largest request body the hot endpoints accept (``max_body_bytes``).
    body_limit: int

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.hot.get(scope["path"])
            if handler is not None:
                await _serve_hot(handler, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


_JSON_HEADERS = (_JSON_TYPE,)


async def answer(handler: _Hot, call: _Call) -> tuple[int, bytes, Sequence[tuple[bytes, bytes]]]:
    """Run a hot endpoint: ``(status, body, headers)``, errors as ``{code, message}``.

    Never raises (but for cancellation): an unexpected error is logged and
    answered as a 500 ``authority_error``. The headers are the response's
    own (``content-length`` is the writer's).
    """
    try:
        status, body = await handler(call)
    except PassgeniError as exc:
        return _error_body(exc)
    except Exception as exc:
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return _error_body(AuthorityError("internal error"))
    return status, body, _JSON_HEADERS


async def _serve_hot(handler: _Hot, scope: Any, receive: Any, send: Any) -> None:
    status, body, headers = await answer(handler, _Call.from_scope(scope, receive))
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _as_response(handler: _Hot, request: Request) -> Response:
    status, body = await handler(_Call.from_scope(request.scope, request.receive))
    return Response(body, status_code=status, media_type="application/json")


def _error_response(exc: PassgeniError) -> JSONResponse:
    headers = {}
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers["Retry-After"] = _ratelimit.retry_after_header(exc.retry_after)
    return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)


def _parse_instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{name} must carry a time zone (e.g. 2026-11-22T00:00:00Z)")
    return parsed


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


_OBJECT = {"type": "object"}


def _body_schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {**schema, "additionalProperties": False}}},
        }
    }


_GENERATE_SCHEMA = _body_schema(
    {
        "compliance_standard": {"type": "string"},
        "preset": {"type": "string"},
        "parameters": _OBJECT,
        "entropy_source": _OBJECT,
    }
)
_REDEEM_PROPS = {
    "generation_session_id": {"type": "string"},
    "credential_commitment": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
    "target": {
        "type": "object",
        "properties": {
            "system": {"type": "string"},
            "path": {"type": "string"},
            "version": {"type": "string"},
        },
    },
    "label": {"type": "string", "maxLength": 200},
}
_REDEEM_SCHEMA = _body_schema(_REDEEM_PROPS, ["generation_session_id"])
_BATCH_SCHEMA = _body_schema(
    {
        "items": {
            "type": "array",
            "maxItems": 1000,
            "items": {"type": "object", "properties": _REDEEM_PROPS},
        }
    },
    ["items"],
)
_GENERATE_BATCH_SCHEMA = _body_schema(
    {
        **_GENERATE_SCHEMA["requestBody"]["content"]["application/json"]["schema"]["properties"],
        "count": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    ["count"],
)
_REVOKE_SCHEMA = _body_schema(
    {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}, ["reason"]
)


def create_app(
    settings: AuthoritySettings | None = None, *, service: AuthorityService | None = None
) -> FastAPI:
    """The authority's ASGI app.

    Give ``settings`` (a service is created, migrating the database now, and
    closed at shutdown) or an existing ``service`` (left open).

    Raises:
        AuthorityUnavailable / AuthorityError: as AuthorityService().
        ValueError: neither or both of ``settings`` and ``service``.
    """
    if (settings is None) == (service is None):
        raise ValueError("give exactly one of settings or service")
    owned = service is None
    if service is not None:
        svc = service
    else:
        assert settings is not None  # exactly one of the two, checked above
        svc = AuthorityService(settings)
    cfg = svc.settings
    trusted = frozenset(cfg.trusted_proxies)
    templates = Environment(
        loader=PackageLoader("passgeni_authority", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await svc.wait_for_queued_events()
        if owned:
            svc.close()

    from . import __version__

    app = _AuthorityApp(
        title="PassGeni authority",
        version=__version__,
        description="Issues and serves password compliance certificates (ES256 JWT).",
        lifespan=lifespan,
    )
    app.state.service = svc

    # -- errors: always {code, message} ---------------------------------------------

    @app.exception_handler(PassgeniError)
    async def _passgeni_error(_request: Request, exc: PassgeniError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        return _error_response(InvalidRequest(message))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error_response(NotFound("no such resource"))
        if exc.status_code == 405:
            return _error_response(MethodNotAllowed("method not allowed on this resource"))
        if exc.status_code == 413:
            return _error_response(BodyTooLarge("the request body is too large"))
        if 400 <= exc.status_code < 500:
            err = InvalidRequest(str(exc.detail))
            err.http_status = exc.status_code
            return _error_response(err)
        return _error_response(AuthorityError("the authority failed"))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # The traceback stays in the server log; the client gets the stable shape.
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return _error_response(AuthorityError("internal error"))

    # -- dependencies -----------------------------------------------------------------

    async def json_body(request: Request) -> dict[str, Any]:
        limit = cfg.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"request bodies are limited to {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"request bodies are limited to {limit} bytes")
            chunks.append(chunk)
        return parse_json_object(b"".join(chunks))

    def ip_of(request: Request) -> str | None:
        return client_ip(request, trusted)

    def bearer(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        return credential.strip() if scheme.lower() == "bearer" else None

    def endpoint_of(request: Request) -> str:
        route = request.scope.get("route")
        return f"{request.method} {getattr(route, 'path', request.url.path)}"

    async def principal(request: Request) -> Principal:
        return await svc.authorize(
            bearer(request), ip=ip_of(request), endpoint=endpoint_of(request)
        )

    Caller = Annotated[Principal, Depends(principal)]
    Body = Annotated[dict[str, Any], Depends(json_body)]
    IP = Annotated[str | None, Depends(ip_of)]

    # -- API ----------------------------------------------------------------------------

    # -- issuance: the hot endpoints (see _AuthorityApp) ------------------------------

    limit = cfg.max_body_bytes

    async def generate(call: _Call) -> tuple[int, bytes]:
        body = await call.body(limit)
        batch = await svc.open_sessions(
            call.bearer(),
            ip=call.ip(trusted),
            endpoint=call.endpoint,
            body=body,
            count=1,
            generation_attempts=0 if isinstance(body, PassgeniError) else 1,
        )
        return 200, _dumps(batch.tickets()[0].to_dict())

    async def generate_batch(call: _Call) -> tuple[int, bytes]:
        body = await call.body(limit)
        count: int | PassgeniError = InvalidRequest("count must be an integer")
        attempts = 0
        if not isinstance(body, PassgeniError):
            body = dict(body)
            raw = body.pop("count", None)
            if isinstance(raw, int) and not isinstance(raw, bool):
                count = raw
                attempts = max(1, min(raw, cfg.max_batch_items))
        batch = await svc.open_sessions(
            call.bearer(),
            ip=call.ip(trusted),
            endpoint=call.endpoint,
            body=body,
            count=count,
            generation_attempts=attempts,
        )
        return 200, _dumps(batch.to_dict())

    async def generate_certificate(call: _Call) -> tuple[int, bytes]:
        body = await call.body(limit)
        ip = call.ip(trusted)
        issued = await svc.issue_certificate(call.bearer(), body, ip=ip, endpoint=call.endpoint)
        return 201, _dumps(issued.to_dict())

    async def generate_certificates(call: _Call) -> tuple[int, bytes]:
        body = await call.body(limit)
        ip = call.ip(trusted)
        items: list[Any] | PassgeniError
        if isinstance(body, PassgeniError):
            items = body
        elif unknown := sorted(str(k)[:40] for k in body if k != "items"):
            items = InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
        elif not isinstance(body.get("items"), list):
            items = InvalidRequest("items must be a list")
        else:
            items = body["items"]
        results = await svc.issue_certificates(call.bearer(), items, ip=ip, endpoint=call.endpoint)
        return 201, _dumps(
            {
                "certificates": [
                    {"error": r.to_dict()} if isinstance(r, PassgeniError) else r.to_dict()
                    for r in results
                ]
            }
        )

    app.hot = {
        "/api/generate": generate,
        "/api/generate-batch": generate_batch,
        "/api/generate-certificate": generate_certificate,
        "/api/generate-certificates": generate_certificates,
    }
    app.hot_raw = {path.encode(): (handler, f"POST {path}") for path, handler in app.hot.items()}
    app.body_limit = limit

    # The same endpoints as routes, for the OpenAPI document (requests to
    # them are answered by _AuthorityApp before routing; these run the same code).

    @app.post(
        "/api/generate",
        openapi_extra=_GENERATE_SCHEMA,
        tags=["certificates"],
        response_model=None,
        response_class=JSONResponse,
    )
    async def generate_route(request: Request) -> Response:
        """Re-validate generation parameters and open a 60 s single-use session."""
        return await _as_response(generate, request)

    @app.post(
        "/api/generate-batch",
        openapi_extra=_GENERATE_BATCH_SCHEMA,
        tags=["certificates"],
        response_model=None,
        response_class=JSONResponse,
    )
    async def generate_batch_route(request: Request) -> Response:
        """``count`` sessions with the same parameters (validated once), for batch issuance.

        Each session counts as one generation attempt towards the per-IP limit.
        """
        return await _as_response(generate_batch, request)

    @app.post(
        "/api/generate-certificate",
        status_code=201,
        openapi_extra=_REDEEM_SCHEMA,
        tags=["certificates"],
        response_model=None,
        response_class=JSONResponse,
    )
    async def generate_certificate_route(request: Request) -> Response:
        """Redeem a generation session for a signed certificate."""
        return await _as_response(generate_certificate, request)

    @app.post(
        "/api/generate-certificates",
        status_code=201,
        openapi_extra=_BATCH_SCHEMA,
        tags=["certificates"],
        response_model=None,
        response_class=JSONResponse,
    )
    async def generate_certificates_route(request: Request) -> Response:
        """Batch issuance: many sessions, many certificates, one request."""
        return await _as_response(generate_certificates, request)

    @app.get("/api/audit", tags=["certificates"])
    def audit(
        caller: Caller,
        standard: str | None = None,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """The caller's certificates (team-wide for team keys), with anomaly flags."""
        return svc.audit(
            caller,
            standard=standard,
            status=status,
            since=_parse_instant("since", since),
            until=_parse_instant("until", until),
            page=page,
            page_size=page_size,
        ).to_dict()

    @app.post(
        "/api/certificates/{cert_id}/revoke", openapi_extra=_REVOKE_SCHEMA, tags=["certificates"]
    )
    def revoke(cert_id: str, caller: Caller, body: Body) -> dict[str, Any]:
        """Revoke one of the caller's certificates (non-destructive)."""
        unknown = sorted(str(k)[:40] for k in body if k != "reason")
        if unknown:
            raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
        return svc.revoke_certificate(caller, cert_id, body.get("reason")).to_dict()

    @app.get("/api/certificates/{cert_id}", tags=["public"])
    def certificate_json(cert_id: str, ip: IP) -> dict[str, Any]:
        """The public certificate record (no authentication)."""
        return svc.get_certificate(cert_id, ip=ip).to_dict()

    @app.get("/cert/{cert_id}", tags=["public"], response_model=None)
    def certificate_page(cert_id: str, request: Request, ip: IP) -> Response:
        """The public certificate page (HTML; JSON with ``Accept: application/json``)."""
        record = svc.get_certificate(cert_id, ip=ip)
        headers = {"Cache-Control": "no-store", "Vary": "Accept"}
        if _wants_json(request):
            return JSONResponse(record.to_dict(), headers=headers)
        html = templates.get_template("certificate.html").render(
            cert=record,
            data=record.to_dict(),
            public_url=cfg.public_url,
            jwks_url=f"{cfg.public_url}/.well-known/jwks.json",
        )
        return HTMLResponse(
            html,
            headers={
                **headers,
                # Nothing external, no scripts: the page is evidence, not an app.
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    @app.get("/.well-known/jwks.json", tags=["public"])
    def jwks() -> JSONResponse:
        """RFC 7517 JWKS: every key whose certificates can still be verified."""
        return JSONResponse(svc.jwks(), headers={"Cache-Control": "max-age=60"})

    @app.get("/healthz", tags=["public"])
    def healthz() -> dict[str, str]:
        return svc.health()

    # Status lists (offline revocation), key history, evidence manifests.
    from ._status import add_routes

    add_routes(app, svc, principal, json_body)

    return app
