"""Observability of one authority: Prometheus metrics (prometheus-client), the
middleware that times every request, and the liveness and readiness checks.

Metrics live in a registry of their own per :class:`Metrics` (several
authorities in one process, as tests run them, count apart). With
``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers N`` sets it for its
workers), prometheus-client's multiprocess mode is used instead: every
worker writes its values to files in that directory and ``/metrics``, on
whichever worker answers, adds up every worker's (counters and histograms;
a worker that died keeps its counts, as a restarted counter should).
Without it, and with any ASGI server running several processes of its own
(``uvicorn --workers``, granian), each process counts for itself: scrape
each one, or set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory for all
of them before they start.

Updates are the client's own (one lock per value); nothing else is shared
per request. Every label takes a bounded set of values: a route template,
an error code, a standard id, a rate-limit policy, a plan name.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from . import _limits

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "Metrics", "Observe", "Readiness", "note_refusal"]

#: prometheus-client's multiprocess directory (one per set of worker processes).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

_CURRENT: ContextVar[Metrics | None] = ContextVar("passgeni_metrics", default=None)


def note_refusal(code: str) -> None:
    """Count an error answer of the current request (called where errors are answered)."""
    metrics = _CURRENT.get()
    if metrics is not None:
        metrics.refusals.labels(code).inc()


class Metrics:
    """The authority's metrics (see the module docstring for processes)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        registry = None if self.multiprocess else CollectorRegistry()
        self.registry = registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.issued = counter(
            "passgeni_certificates_issued",
            "Certificates issued, by compliance standard",
            ("standard",),
        )
        self.revoked = counter(
            "passgeni_certificates_revoked",
            "Certificates revoked (first revocation), by compliance standard",
            ("standard",),
        )
        self.sessions_opened = counter("passgeni_sessions_opened", "Generation sessions opened")
        self.sessions_expired = counter(
            "passgeni_sessions_expired",
            "Redemptions refused because their generation session had expired",
        )
        self.refusals = counter(
            "passgeni_refusals",
            "Error answers (and refused batch items), by error code",
            ("code",),
        )
        self.rate_limited = counter(
            "passgeni_rate_limited", "Requests refused by a rate limit, by policy", ("policy",)
        )
        self.auth_failed = counter(
            "passgeni_authentication_failures", "Requests with a missing, unknown or revoked key"
        )
        self.quota_refused = counter(
            "passgeni_quota_refusals",
            "Certificates refused over a plan's quota, by plan",
            ("plan",),
        )
        self.anomalies = counter("passgeni_anomalies", "Anomaly flags raised")
        self.db_errors = counter("passgeni_database_errors", "Database errors (any statement)")
        self.latency = Histogram(
            "passgeni_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            ("endpoint",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.group_size = Histogram(
            "passgeni_group_commit_units",
            "Requests (units) per group commit",
            buckets=_GROUP_BUCKETS,
            registry=registry,
        )
        self._latency: dict[str, Any] = {}

    def observe_latency(self, endpoint: str, seconds: float) -> None:
        child = self._latency.get(endpoint)
        if child is None:
            child = self._latency.setdefault(endpoint, self.latency.labels(endpoint))
        child.observe(seconds)

    def refusal_noted(self, kind: str, detail: Mapping[str, Any]) -> None:
        """A refusal the event trail aggregated (``_events.Refusals``)."""
        if kind == "rate_limited":
            self.rate_limited.labels(str(detail.get("policy") or "unknown")).inc()
        elif kind == "auth_failed":
            self.auth_failed.inc()
        elif kind == "quota_exceeded":
            self.quota_refused.labels(str(detail.get("plan") or "unknown")).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's, or every worker's in multiprocess mode."""
        if self.multiprocess:
            registry = CollectorRegistry()
            # prometheus-client ships this constructor without annotations.
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        assert self.registry is not None
        return generate_latest(self.registry)


class Observe:
    """ASGI middleware, the app's outermost: each request's latency by route,
    the request's :class:`Metrics` for the error answers to count their
    codes, and the ``RateLimit-Policy`` / ``RateLimit`` fields of the limits
    the service reported for it (``_limits.report``), added to its answer.

    One middleware for both, not two: every request pays for each layer
    (a call, a ``send`` wrapper) and this one runs on all of them.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        token = _CURRENT.set(self.metrics)
        holder, limits = _limits.collect()

        async def send_with_limits(message: Any) -> None:
            if holder and message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), *_limits.limit_headers(holder)],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            _limits.stop_collecting(limits)
            _CURRENT.reset(token)
            path = getattr(scope.get("route"), "path", None)
            # The issuance endpoints are plain routes: their endpoint names itself.
            name = (
                f"{scope['method']} {path}"
                if path is not None
                else getattr(scope.get("endpoint"), "endpoint", None)
                or f"{scope['method']} unmatched"
            )
            self.metrics.observe_latency(name, time.perf_counter() - start)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Readiness:
    """``/readyz``: the database answers and the signer signs with the active key
    (a probe signature, checked against that key's published JWK). A result is
    kept :data:`TTL` seconds, so probes cannot make the signer work per request."""

    TTL = 2.0

    def __init__(
        self, ping: Callable[[], None], probe: Callable[[bytes], tuple[bytes, dict[str, Any]]]
    ) -> None:
        self._ping = ping
        self._probe = probe
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, Any]] | None = None

    def check(self) -> dict[str, Any]:
        """``{"status": "ready"|"not_ready", "checks": {"database": ..., "signer": ...}}``."""
        with self._lock:
            last = self._last
            if last is not None and time.monotonic() - last[0] < self.TTL:
                return last[1]
            result = self._check()
            self._last = (time.monotonic(), result)
            return result

    def _check(self) -> dict[str, Any]:
        checks: dict[str, str] = {}
        try:
            self._ping()
            checks["database"] = "ok"
        except Exception as exc:  # reported, never raised: readiness is the answer
            checks["database"] = f"failed: {type(exc).__name__}"
        if checks["database"] == "ok":
            try:
                message = b"passgeni readiness probe"
                signature, jwk = self._probe(message)
                _verify_es256(jwk, message, signature)
                checks["signer"] = "ok"
            except Exception as exc:
                checks["signer"] = f"failed: {type(exc).__name__}"
        else:
            checks["signer"] = "not checked: the database failed"
        ready = all(v == "ok" for v in checks.values())
        return {"status": "ready" if ready else "not_ready", "checks": checks}


def _verify_es256(jwk: dict[str, Any], message: bytes, signature: bytes) -> None:
    """Raises InvalidSignature (or ValueError) unless ``signature`` (JWS r||s) is good."""
    if len(signature) != 64:
        raise InvalidSignature("not a 64-byte ES256 signature")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64url_decode(jwk["x"]), "big"),
        int.from_bytes(_b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    )
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    numbers.public_key().verify(der, message, ec.ECDSA(hashes.SHA256()))
