"""The FastAPI app: a thin HTTP layer over :class:`AuthorityService`.

It only translates: headers and bodies in, JSON (or the certificate page)
out, and every error as ``{"code", "message"}`` with the status of the core's
exception class. No rule lives here.

Every endpoint is a route of this one app, behind its one middleware stack
(``app.add_middleware`` wraps them all). The four issuance endpoints are
plain ASGI routes (:mod:`._issuance_http`); the others are FastAPI's.
Bodies are parsed by hand rather than by pydantic models so the rules the
contract states hold exactly (:func:`parse_json_object`); answers are the
wire contract's Structs (``passgeni_core.client``), encoded by msgspec, and
the OpenAPI document describes every body from the same Structs
(:mod:`._openapi`).
"""

# No `from __future__ import annotations`: FastAPI must see the real dependency
# types, and Caller/Body/IP are local to create_app().

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from passgeni_core import (
    AuthorityError,
    InvalidRequest,
    NotFound,
    PassgeniError,
    RateLimited,
    checked_text,
)
from passgeni_core.client import (
    ErrorBody,
    GenerationBatchBody,
    GenerationSessionBody,
    IssueBatchBody,
    IssuedBatchBody,
    IssueErrorBody,
    LookupAnswerBody,
    LookupBody,
    RevokeBody,
)
from passgeni_core.model import is_embedded_issuer

from . import _ratelimit
from ._issuance_http import (
    BodyTooLarge,
    Call,
    IssuanceEndpoint,
    client_ip,
    dumps as _dumps,
    dumps_flat,
    parse_json_object,
    read_body,
)
from ._metrics import CONTENT_TYPE, Observe, note_refusal
from ._openapi import ISSUANCE_PATHS, document_bodies, issuance_operations
from ._page import PAGE_HEADERS, Pages
from ._service import AuthorityService, Principal
from ._settings import AuthoritySettings

__all__ = ["create_app", "parse_json_object"]

log = logging.getLogger("passgeni_authority.http")


# The fields of the wire contract's request bodies (the handlers check them by hand, with
# the contract's messages).
_BATCH_FIELDS = frozenset(IssueBatchBody.__struct_fields__)
_REVOKE_FIELDS = frozenset(RevokeBody.__struct_fields__)


class MethodNotAllowed(InvalidRequest):
    http_status = 405


class _AuthorityApp(FastAPI):
    """FastAPI, with the issuance endpoints and the wire bodies' schemas in
    its OpenAPI document.

    The issuance endpoints are plain ASGI routes, which FastAPI does not
    describe itself; the bodies' schemas are generated from the wire Structs.
    """

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"] = {**issuance_operations(), **schema.get("paths", {})}
            document_bodies(schema)
            self.openapi_schema = schema
        return self.openapi_schema


def _json(body: Any, *, headers: dict[str, str] | None = None) -> Response:
    """A wire Struct (or JSON-ready data) as the answer, encoded as the issuance endpoints are."""
    return Response(_dumps(body), media_type="application/json", headers=headers)


def _one_session(batch: GenerationBatchBody) -> GenerationSessionBody:
    return GenerationSessionBody(
        generation_session_id=batch.generation_session_ids[0],
        expires_in=batch.expires_in,
        compliance_standard=batch.compliance_standard,
        standards_met=batch.standards_met,
        entropy_bits=batch.entropy_bits,
        naive_entropy_bits=batch.naive_entropy_bits,
        parameters=batch.parameters,
        mapping_version=batch.mapping_version,
        authority_nonce=batch.authority_nonces[0] if batch.authority_nonces else None,
        generator=batch.generator,
    )


def _error_response(exc: PassgeniError) -> JSONResponse:
    note_refusal(exc.code)
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
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{name} is out of range once in UTC") from None
    if not 1970 <= in_utc.year <= 9999:
        raise InvalidRequest(f"{name} must be between 1970 and 9999")
    return in_utc


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def _wants_html(request: Request) -> bool:
    """A browser: it names HTML (an API client sends ``*/*`` or JSON and keeps the JSON
    404; ``*/*`` alone still gets the HTML certificate page, as before)."""
    return "text/html" in request.headers.get("accept", "").lower()


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
    pages = Pages()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await svc.wait_for_queued_events()
        if owned:
            svc.close()

    from . import __version__

    # The issuance endpoints are the first routes, before even FastAPI's
    # documentation routes: the router tries each route's pattern in turn,
    # and these carry most requests. Their handlers are set below.
    issuance = {path: IssuanceEndpoint(f"POST {path}") for path in ISSUANCE_PATHS}
    app = _AuthorityApp(
        title="PassGeni authority",
        version=__version__,
        description="Issues and serves password compliance certificates (ES256 JWT).",
        lifespan=lifespan,
        routes=[
            Route(path, endpoint, methods=["POST"], include_in_schema=False)
            for path, endpoint in issuance.items()
        ],
    )
    app.state.service = svc
    # Each request's latency and error code in the metrics, and the
    # RateLimit-Policy / RateLimit fields of every answer under a limit.
    app.add_middleware(Observe, metrics=svc.metrics)

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
        # The same reader as the issuance endpoints': one size and time rule for all.
        raw = await read_body(
            request.receive,
            request.headers.get("content-length"),
            cfg.max_body_bytes,
            cfg.body_read_seconds,
        )
        if isinstance(raw, PassgeniError):
            raise raw
        return parse_json_object(raw)

    def ip_of(request: Request) -> str | None:
        peer = request.client.host if request.client else None
        return client_ip(peer, lambda: request.headers.get("x-forwarded-for", ""), trusted)

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

    # -- issuance: plain ASGI routes (see _issuance_http) ------------------------------

    limit = cfg.max_body_bytes

    async def generate(call: Call) -> tuple[int, bytes]:
        body = await call.body(limit, cfg.body_read_seconds)
        batch = await svc.open_sessions(
            call.bearer(),
            ip=call.ip(trusted),
            endpoint=call.endpoint,
            body=body,
            count=1,
            generation_attempts=0 if isinstance(body, PassgeniError) else 1,
        )
        return 200, _dumps(_one_session(batch))

    async def generate_batch(call: Call) -> tuple[int, bytes]:
        body = await call.body(limit, cfg.body_read_seconds)
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
        return 200, dumps_flat(batch)

    async def generate_certificate(call: Call) -> tuple[int, bytes]:
        body = await call.body(limit, cfg.body_read_seconds)
        ip = call.ip(trusted)
        issued = await svc.issue_certificate(call.bearer(), body, ip=ip, endpoint=call.endpoint)
        return 201, _dumps(issued)

    async def generate_certificates(call: Call) -> tuple[int, bytes]:
        body = await call.body(limit, cfg.body_read_seconds)
        ip = call.ip(trusted)
        items: list[Any] | PassgeniError
        if isinstance(body, PassgeniError):
            items = body
        elif unknown := sorted(str(k)[:40] for k in body if k not in _BATCH_FIELDS):
            items = InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
        elif not isinstance(body.get("items"), list):
            items = InvalidRequest("items must be a list")
        else:
            items = body["items"]
        results = await svc.issue_certificates(call.bearer(), items, ip=ip, endpoint=call.endpoint)
        return 201, _dumps(
            IssuedBatchBody(
                certificates=[
                    IssueErrorBody(error=ErrorBody(code=r.code, message=r.message))
                    if isinstance(r, PassgeniError)
                    else r
                    for r in results
                ]
            )
        )

    issuance["/api/generate"].handler = generate
    issuance["/api/generate-batch"].handler = generate_batch
    issuance["/api/generate-certificate"].handler = generate_certificate
    issuance["/api/generate-certificates"].handler = generate_certificates

    @app.get("/api/audit", tags=["certificates"])
    def audit(
        caller: Caller,
        standard: str | None = None,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Response:
        """The caller's certificates (team-wide for team keys), with anomaly flags."""
        page_of = svc.audit(
            caller,
            standard=None
            if standard is None
            else checked_text(standard, name="standard", max_length=64),
            status=None if status is None else checked_text(status, name="status", max_length=32),
            since=_parse_instant("since", since),
            until=_parse_instant("until", until),
            page=page,
            page_size=page_size,
        )
        return _json(page_of)

    @app.post(
        "/api/certificates/{cert_id}/revoke",
        tags=["certificates"],
    )
    def revoke(cert_id: str, caller: Caller, body: Body, ip: IP) -> Response:
        """Revoke one of the caller's certificates (non-destructive)."""
        unknown = sorted(str(k)[:40] for k in body if k not in _REVOKE_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
        return _json(svc.revoke_certificate(caller, cert_id, body.get("reason"), ip=ip).to_wire())

    @app.get(
        "/api/certificates/{cert_id}",
        tags=["public"],
    )
    def certificate_json(cert_id: str, ip: IP) -> Response:
        """The public certificate record (no authentication)."""
        return _json(svc.get_certificate(cert_id, ip=ip).to_wire())

    @app.post("/api/certificates/lookup", tags=["public"])
    def certificates_lookup(body: Body, ip: IP) -> Response:
        """Many public certificate records in one request (no authentication)."""
        try:
            ids = msgspec.convert(body, LookupBody).cert_ids
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid lookup: {str(exc)[:200]}") from None
        found = svc.get_certificates(ids, ip=ip)
        return _json(
            LookupAnswerBody(
                certificates=[
                    r.to_wire()
                    if not isinstance(r, PassgeniError)
                    else IssueErrorBody(error=ErrorBody(code=r.code, message=r.message))
                    for r in found
                ]
            )
        )

    @app.get("/cert/{cert_id}", tags=["public"], response_model=None)
    def certificate_page(cert_id: str, request: Request, ip: IP) -> Response:
        """The public certificate page (HTML; JSON with ``Accept: application/json``)."""
        # An embedded issuer is no address: point the page's links where it is served.
        base = (
            str(request.base_url).rstrip("/")
            if is_embedded_issuer(cfg.public_url)
            else cfg.public_url
        )
        try:
            record = svc.get_certificate(cert_id, ip=ip)
        except NotFound:
            # A browser gets a page saying so; an API client the {code, message} body.
            if not _wants_html(request):
                raise
            return HTMLResponse(
                pages.not_found(cert_id, base_url=base), status_code=404, headers=PAGE_HEADERS
            )
        if _wants_json(request):
            return _json(record.to_wire(), headers={"Cache-Control": "no-store", "Vary": "Accept"})
        return HTMLResponse(pages.certificate(record, base_url=base), headers=PAGE_HEADERS)

    @app.get("/.well-known/jwks.json", tags=["public"])
    def jwks() -> JSONResponse:
        """RFC 7517 JWKS: every key whose certificates can still be verified."""
        return JSONResponse(svc.jwks(), headers={"Cache-Control": "max-age=60"})

    @app.get("/healthz", tags=["public"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (nothing else is checked)."""
        return svc.health()

    @app.get("/readyz", tags=["public"])
    def readyz() -> JSONResponse:
        """Readiness: the database answers and the signer signs (503 when not)."""
        result = svc.ready()
        return JSONResponse(result, status_code=200 if result["status"] == "ready" else 503)

    @app.get("/metrics", tags=["public"], response_model=None)
    def metrics() -> Response:
        """Prometheus text format (see docs/operations.md)."""
        return Response(svc.metrics.exposition(), media_type=CONTENT_TYPE)

    # Status lists (offline revocation), key history, evidence manifests.
    from ._status import add_routes

    add_routes(app, svc, principal, json_body)

    # The audit trail (usage events, anomaly flags).
    from ._eventroutes import add_routes as add_event_routes

    add_event_routes(app, svc, principal, _parse_instant)
    # The transparency log (checkpoints, proofs, its key).
    from ._tlog import add_routes as add_log_routes

    add_log_routes(app, svc.log)
    # In-toto attestations of certificates (DSSE envelopes signed by the authority).
    from ._attestation import add_route as add_attestation_route

    add_attestation_route(app, svc, ip_of)
    # The browser pages: the generator (and the dashboard), in their own modules.
    from ._dashboard import add_dashboard_routes
    from ._web import add_generator_routes

    add_generator_routes(app)
    app.state.dashboard = add_dashboard_routes(
        app, svc, principal=principal, json_body=json_body, ip_of=ip_of
    )

    return app
