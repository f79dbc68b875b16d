"""The audit trail's routes: ``GET /api/events`` and ``GET /api/anomalies`` (see
:mod:`._eventsapi`). No ``from __future__ import annotations``: FastAPI must see
the real dependency types."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response

from ._issuance_http import dumps
from ._models import Principal

__all__ = ["add_routes"]


def add_routes(app: FastAPI, service: Any, principal: Any, parse_instant: Any) -> None:
    """Register ``GET /api/events`` and ``GET /api/anomalies`` on ``app``.

    ``principal`` is the app's API-key dependency (with rate limits);
    ``parse_instant`` its ISO 8601 parser for ``since``/``until``.
    """
    Caller = Annotated[Principal, Depends(principal)]

    @app.get("/api/events", tags=["audit"], response_model=None)
    def events(
        caller: Caller,
        type: Annotated[list[str] | None, Query(max_length=32)] = None,
        user: Annotated[str | None, Query(max_length=64)] = None,
        team: Annotated[str | None, Query(max_length=64)] = None,
        key: Annotated[str | None, Query(max_length=16)] = None,
        ip: Annotated[str | None, Query(max_length=45)] = None,
        since: Annotated[str | None, Query(max_length=40)] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Usage events in the caller's scope (its own; its team's for a team key;
        every tenant's for an operator's key), oldest first, from ``after``."""
        types = [t for value in type or () for t in value.split(",") if t]
        page = service.events_page(
            caller,
            types=types,
            user=user,
            team=team,
            key=key,
            ip=ip,
            since=parse_instant("since", since),
            until=parse_instant("until", until),
            after=after,
            limit=limit,
        )
        return Response(dumps(page), media_type="application/json")

    @app.get("/api/anomalies", tags=["audit"], response_model=None)
    def anomalies(caller: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
        """The latest anomaly flags in the caller's scope, newest first."""
        body = {"anomalies": service.anomalies(caller, limit=limit)}
        return Response(dumps(body), media_type="application/json")
