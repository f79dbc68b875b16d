"""HTTP client for a PassGeni authority (the public API or a self-hosted one).

The client never sees a password or a binding key: its methods take only
public parameters, a generation session id and a credential *commitment*.
The API key travels in the ``Authorization`` header of ``/api/*`` calls and
nowhere else: not in URLs, messages, reprs or exceptions.

Transport behaviour:

* Connection errors, ``503`` (and ``502``/``504`` for idempotent calls) are
  retried with exponential backoff (``backoff * 2**attempt``, jittered).
* ``429`` is retried after the server's ``Retry-After`` when that is at most
  ``max_retry_after`` seconds; a longer wait raises :class:`RateLimited` at
  once (with ``retry_after``) rather than blocking a caller for an hour.
* A read timeout is retried only for idempotent calls: re-sending
  ``generate-certificate`` after a lost response would burn the session.
* Redirects are not followed, so the API key can never be replayed to
  another URL; a 3xx is reported as a configuration error.
* Error bodies ``{code, message}`` become the core's exception for ``code``
  (:func:`passgeni_core.error_for_code`).
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests

from ._claims import Target
from ._entropy_source import EntropySource
from ._errors import (
    AuthorityError,
    AuthorityUnavailable,
    InvalidRequest,
    NotFound,
    PassgeniError,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    error_for_code,
)
from ._params import GenerationParameters
from ._verify import JWKS

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_BODY",
    "Anomaly",
    "AuditPage",
    "AuthorityClient",
    "CertificateRecord",
    "CertificateRequest",
    "GenerationSession",
    "IssuedCertificate",
]

#: The authority's limit on one batch request; larger batches are split.
MAX_BATCH = 1000
#: The authority refuses request bodies over 64 KiB; batches are also split to stay under this.
MAX_BATCH_BODY = 60_000
#: Server messages are shown to users; keep them bounded.
_MAX_MESSAGE = 500
_USER_AGENT = "passgeni-client/0.1"

CertificateStatus = Literal["valid", "expired", "revoked"]
_STATUSES = ("valid", "expired", "revoked")


# --- response models ---------------------------------------------------------------


def _bad(what: str) -> AuthorityError:
    return AuthorityError(f"unexpected response from the authority: {what}")


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(f"field {key!r} is missing or not a string")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"field {key!r} is not a string")
    return value


def _float(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"field {key!r} is missing or not a number")
    return float(value)


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _float(data, key)


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"field {key!r} is missing or not an integer")
    return value


def _strs(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"field {key!r} is missing or not a list of strings")
    return tuple(value)


def _obj(data: Mapping[str, Any], key: str, *, optional: bool = False) -> dict[str, Any]:
    value = data.get(key)
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"field {key!r} is missing or not an object")
    return value


def _parse_time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise _bad(f"field {key!r} is missing or not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(f"field {key!r} is not an ISO 8601 time") from None
    # The contract says UTC with "Z"; a naive time from a lax server means UTC too.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _time(data: Mapping[str, Any], key: str) -> datetime:
    return _parse_time(data.get(key), key)


def _opt_time(data: Mapping[str, Any], key: str) -> datetime | None:
    return None if data.get(key) is None else _time(data, key)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class GenerationSession:
    """The authority's answer to ``POST /api/generate``: a single-use, 60-second session.

    The session id is a bearer capability for one certificate, so ``repr``
    shows only its first characters.
    """

    session_id: str
    expires_in: int
    #: Local clock time after which the server will refuse the session.
    expires_at: datetime
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    mapping_version: str | None = None

    def __repr__(self) -> str:
        return (
            f"GenerationSession(session_id='{self.session_id[:8]}...', "
            f"compliance_standard={self.compliance_standard!r}, "
            f"entropy_bits={self.entropy_bits}, expires_at={_iso(self.expires_at)!r})"
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, received_at: datetime) -> GenerationSession:
        """Parse the response body.

        Raises:
            AuthorityError: a field is missing or ill-typed.
        """
        expires_in = _int(data, "expires_in")
        return cls(
            session_id=_str(data, "generation_session_id"),
            expires_in=expires_in,
            expires_at=received_at + timedelta(seconds=expires_in),
            compliance_standard=_str(data, "compliance_standard"),
            standards_met=_strs(data, "standards_met"),
            entropy_bits=_float(data, "entropy_bits"),
            naive_entropy_bits=_opt_float(data, "naive_entropy_bits"),
            parameters=_obj(data, "parameters", optional=True),
            mapping_version=_opt_str(data, "mapping_version"),
        )


@dataclass(frozen=True, kw_only=True)
class IssuedCertificate:
    """The authority's answer to ``POST /api/generate-certificate``."""

    cert_id: str
    cert_url: str
    token: str
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    issued_at: datetime
    expires_at: datetime

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IssuedCertificate:
        """Parse the response body.

        Raises:
            AuthorityError: a field is missing or ill-typed.
        """
        return cls(
            cert_id=_str(data, "cert_id"),
            cert_url=_str(data, "cert_url"),
            token=_str(data, "token"),
            compliance_standard=_str(data, "compliance_standard"),
            standards_met=_strs(data, "standards_met"),
            entropy_bits=_float(data, "entropy_bits"),
            issued_at=_time(data, "issued_at"),
            expires_at=_time(data, "expires_at"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "token": self.token,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
        }


@dataclass(frozen=True, kw_only=True)
class CertificateRecord:
    """A certificate as the authority stores it, with its current status."""

    cert_id: str
    cert_url: str
    status: CertificateStatus
    issued_at: datetime
    expires_at: datetime
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    token: str
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    entropy_source: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    target: Target | None = None
    kid: str | None = None

    @property
    def reason(self) -> str | None:
        """The revocation reason (``None`` unless revoked)."""
        return self.revocation_reason

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CertificateRecord:
        """Parse a certificate record.

        Raises:
            AuthorityError: a field is missing or ill-typed, or the status is unknown.
        """
        status = data.get("status")
        if status not in _STATUSES:
            raise _bad(f"certificate status {str(status)[:20]!r} is not valid/expired/revoked")
        target = None
        if data.get("target") is not None:
            try:
                target = Target.from_dict(data["target"])
            except InvalidRequest as exc:
                raise _bad(f"field 'target': {exc.message}") from None
        return cls(
            cert_id=_str(data, "cert_id"),
            cert_url=_str(data, "cert_url"),
            status=status,
            issued_at=_time(data, "issued_at"),
            expires_at=_time(data, "expires_at"),
            compliance_standard=_str(data, "compliance_standard"),
            standards_met=_strs(data, "standards_met"),
            entropy_bits=_float(data, "entropy_bits"),
            token=_str(data, "token"),
            revoked_at=_opt_time(data, "revoked_at"),
            revocation_reason=_opt_str(data, "revocation_reason"),
            parameters=_obj(data, "parameters", optional=True),
            entropy_source=_obj(data, "entropy_source", optional=True),
            label=_opt_str(data, "label"),
            target=target,
            kid=_opt_str(data, "kid"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "status": self.status,
            "revoked_at": _iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "parameters": self.parameters,
            "entropy_source": self.entropy_source,
            "label": self.label,
            "target": self.target.to_dict() if self.target else None,
            "token": self.token,
            "kid": self.kid,
        }


@dataclass(frozen=True, kw_only=True)
class Anomaly:
    """An anomaly flag from the audit (e.g. more than 50 certificates in 24 h)."""

    user: str
    detected_at: datetime
    count_24h: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "detected_at": _iso(self.detected_at),
            "count_24h": self.count_24h,
        }


@dataclass(frozen=True, kw_only=True)
class AuditPage:
    """One page of ``GET /api/audit``."""

    items: tuple[CertificateRecord, ...]
    page: int
    page_size: int
    total: int
    anomalies: tuple[Anomaly, ...] = ()

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditPage:
        """Parse an audit page.

        Raises:
            AuthorityError: a field is missing or ill-typed.
        """
        items = data.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _bad("field 'items' is missing or not a list of objects")
        raw_anomalies = data.get("anomalies") or []
        if not isinstance(raw_anomalies, list) or not all(
            isinstance(a, dict) for a in raw_anomalies
        ):
            raise _bad("field 'anomalies' is not a list of objects")
        return cls(
            items=tuple(CertificateRecord.from_dict(i) for i in items),
            page=_int(data, "page"),
            page_size=_int(data, "page_size"),
            total=_int(data, "total"),
            anomalies=tuple(
                Anomaly(
                    user=_str(a, "user"),
                    detected_at=_time(a, "detected_at"),
                    count_24h=_int(a, "count_24h"),
                )
                for a in raw_anomalies
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [i.to_dict() for i in self.items],
            "page": self.page,
            "page_size": self.page_size,
            "total": self.total,
            "anomalies": [a.to_dict() for a in self.anomalies],
        }


@dataclass(frozen=True, kw_only=True)
class CertificateRequest:
    """One item of a batch issuance: a session plus what to bind the certificate to."""

    session_id: str
    credential_commitment: str | None = None
    target: Target | Mapping[str, Any] | None = None
    label: str | None = None

    def __repr__(self) -> str:
        return f"CertificateRequest(session_id='{self.session_id[:8]}...', label={self.label!r})"

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"generation_session_id": self.session_id}
        if self.credential_commitment is not None:
            body["credential_commitment"] = self.credential_commitment
        if self.target is not None:
            target = (
                self.target
                if isinstance(self.target, Target)
                else Target.from_dict(dict(self.target))
            )
            body["target"] = target.to_dict()
        if self.label is not None:
            body["label"] = self.label
        return body


# --- the client ------------------------------------------------------------------------


def _normalise_base_url(base_url: str) -> str:
    if not isinstance(base_url, str):
        raise InvalidRequest("the authority URL must be a string")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(
            f"the authority URL must be http(s)://host[:port][/prefix], got {base_url[:100]!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        # Credentials in a URL end up in logs; the key goes in the header only.
        raise InvalidRequest(
            "the authority URL must not carry credentials, a query string or a fragment"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def _parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _generation_body(
    preset: str,
    parameters: GenerationParameters | Mapping[str, Any],
    entropy_source: EntropySource | Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The body of ``/api/generate`` and ``/api/generate-batch``: public fields only.

    Validating through the core's types first means nothing but parameter
    fields (never a password) can be sent.
    """
    params = (
        parameters
        if isinstance(parameters, GenerationParameters)
        else GenerationParameters.from_dict(dict(parameters))
    )
    body: dict[str, Any] = {"compliance_standard": preset, "parameters": params.to_dict()}
    if entropy_source is not None:
        source = (
            entropy_source
            if isinstance(entropy_source, EntropySource)
            else EntropySource.from_dict(dict(entropy_source))
        )
        body["entropy_source"] = source.to_dict()
    return body


class AuthorityClient:
    """A client for one PassGeni authority.

    ``session`` may be any ``requests.Session`` (e.g. with a mounted adapter
    for tests, proxies or custom TLS); the client only adds the
    ``Authorization`` header per request and never stores the key on it.
    A session passed in is not closed by :meth:`close`.

    Every method raises, besides what it lists:
        AuthorityUnavailable: no connection / 5xx after ``retries`` retries.
        RateLimited: 429 after retries, or a ``Retry-After`` over ``max_retry_after``.
        Unauthenticated: missing or invalid API key (401).
        AuthorityError: an unexpected answer (redirect, non-JSON, missing field).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_retry_after: float = 30.0,
        session: requests.Session | None = None,
        issuer: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Raises InvalidRequest: ``base_url`` is not an http(s) URL, or a bad numeric option."""
        self.base_url = _normalise_base_url(base_url)
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise InvalidRequest("the API key must be a non-empty string")
        if any(ch in (api_key or "") for ch in "\r\n"):
            raise InvalidRequest("the API key must not contain line breaks")
        if not timeout > 0 or retries < 0 or backoff < 0 or max_retry_after < 0:
            raise InvalidRequest("timeout must be > 0; retries, backoff and max_retry_after >= 0")
        self._api_key = api_key.strip() if api_key else None
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_retry_after = float(max_retry_after)
        #: The ``iss`` certificates from this authority carry (its public base URL).
        self.issuer = _normalise_base_url(issuer) if issuer else self.base_url
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._jwks: JWKS | None = None
        self._jwks_document: dict[str, Any] | None = None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"AuthorityClient(base_url={self.base_url!r}, api_key={key}, "
            f"timeout={self.timeout}, retries={self.retries})"
        )

    __str__ = __repr__

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> AuthorityClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        # Full jitter keeps a fleet of rotating clients from retrying in lockstep.
        return float(self.backoff * (2**attempt) * (0.5 + random.random() / 2))  # noqa: S311

    def _scrub(self, text: str) -> str:
        text = " ".join(text.split())[:_MAX_MESSAGE]
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _error_from_response(self, response: requests.Response, what: str) -> PassgeniError:
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        code = message = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code, message = body.get("code"), body.get("message")
            if isinstance(body.get("detail"), dict):  # tolerate frameworks wrapping the error
                code = code or body["detail"].get("code")
                message = message or body["detail"].get("message")
        if isinstance(code, str) and code:
            text = self._scrub(message if isinstance(message, str) and message else code)
            cls = error_for_code(code)
            if cls is RateLimited:
                return RateLimited(text, retry_after=retry_after)
            if cls is PassgeniError:
                # A code newer than this library: keep it so callers and the CLI show it.
                exc: PassgeniError = AuthorityError(text)
                exc.code = self._scrub(code)[:64]
                return exc
            return cls(text)
        status = response.status_code
        generic = f"{what}: the authority answered HTTP {status}"
        if status == 401:
            return Unauthenticated(f"{generic} (missing or invalid API key)")
        if status == 403:
            return PermissionDenied(generic)
        if status == 404:
            return NotFound(generic)
        if status == 429:
            return RateLimited(generic, retry_after=retry_after)
        if status >= 500:
            return AuthorityUnavailable(generic)
        if 300 <= status < 400:
            return AuthorityError(
                f"{generic} (a redirect; configure the authority's final URL, redirects are "
                "not followed so the API key cannot be replayed elsewhere)"
            )
        return AuthorityError(generic)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        idempotent: bool = True,
        expected: tuple[int, ...] = (200, 201),
        raw: bool = False,
    ) -> Any:
        url = self.base_url + path
        what = f"{method} {self.base_url}{path.split('?')[0]}"
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if auth:
            if self._api_key is None:
                raise Unauthenticated(
                    f"{what}: no API key configured (set PASSGENI_API_KEY or pass --api-key)"
                )
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempts = self.retries + 1
        sent_once = False
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._session.request(
                    method,
                    url,
                    json=body,
                    params={k: v for k, v in (params or {}).items() if v is not None},
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.exceptions.ReadTimeout:
                sent_once = True
                if idempotent and not last:
                    self._sleep(self._delay(attempt))
                    continue
                raise AuthorityUnavailable(
                    f"{what}: no answer within {self.timeout:g}s"
                    + ("" if idempotent else "; the request may or may not have been applied")
                ) from None
            except requests.exceptions.ConnectionError as exc:
                sent_once = sent_once or _maybe_sent(exc)
                if not last:
                    self._sleep(self._delay(attempt))
                    continue
                reason = type(exc).__name__
                raise AuthorityUnavailable(
                    f"cannot reach the authority at {self.base_url} after {attempts} attempt(s) "
                    f"({reason})"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise AuthorityError(f"{what}: {type(exc).__name__}") from None

            status = response.status_code
            if status in expected and raw:
                return response.text
            if status in expected:
                try:
                    data = response.json()
                except ValueError:
                    raise AuthorityError(f"{what}: the authority answered non-JSON") from None
                return data
            if status == 429 and not last:
                wait = _parse_retry_after(response.headers.get("Retry-After"))
                if wait is None:
                    wait = self._delay(attempt)
                if wait <= self.max_retry_after:
                    self._sleep(wait)
                    continue
            retryable = status == 503 or (idempotent and status in (502, 504))
            if retryable and not last:
                wait = _parse_retry_after(response.headers.get("Retry-After"))
                delay = self._delay(attempt)
                self._sleep(min(max(wait or 0.0, delay), max(self.max_retry_after, delay)))
                continue
            error = self._error_from_response(response, what)
            if sent_once and not idempotent and error.code == "session_already_used":
                error = type(error)(
                    f"{error.message} (an earlier attempt was cut off; it may have issued the "
                    "certificate: see `passgeni audit`)"
                )
            if retryable and isinstance(error, AuthorityUnavailable):
                error = AuthorityUnavailable(f"{error.message} after {attempts} attempt(s)")
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _object(data: Any, what: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise _bad(f"{what} is not a JSON object")
        return data

    # -- API ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (no authentication)."""
        return self._object(self._request("GET", "/healthz", auth=False), "health")

    def jwks_document(self, *, refresh: bool = False) -> dict[str, Any]:
        """The raw ``/.well-known/jwks.json`` document (cached until ``refresh``).

        Raises:
            InvalidRequest: the document is not a valid JWK Set.
        """
        if self._jwks_document is None or refresh:
            doc = self._object(
                self._request("GET", "/.well-known/jwks.json", auth=False), "the JWKS"
            )
            self._jwks = JWKS.from_dict(doc)
            self._jwks_document = doc
        return self._jwks_document

    def jwks(self, *, refresh: bool = False) -> JWKS:
        """The authority's signing keys, parsed (cached until ``refresh``).

        Keys are only ever added (rotation keeps old ones until their last
        certificate expires), so callers refresh only on an unknown ``kid``.

        Raises:
            InvalidRequest: the document is not a valid JWK Set.
        """
        self.jwks_document(refresh=refresh)
        assert self._jwks is not None
        return self._jwks

    def start_generation(
        self,
        preset: str,
        parameters: GenerationParameters | Mapping[str, Any],
        *,
        entropy_source: EntropySource | Mapping[str, Any] | None = None,
    ) -> GenerationSession:
        """``POST /api/generate``: register public parameters, get a 60-second session.

        ``parameters`` are validated locally first, so nothing but the
        parameter fields (never a password) can be sent.

        Raises:
            InvalidParameters (and subclasses): invalid parameters (locally or by the server).
            UnknownPreset / PresetNotMet: as re-checked by the authority.
        """
        body = _generation_body(preset, parameters, entropy_source)
        data = self._request("POST", "/api/generate", body=body)
        return GenerationSession.from_dict(
            self._object(data, "the session"), received_at=datetime.now(UTC)
        )

    def start_generations(
        self,
        preset: str,
        parameters: GenerationParameters | Mapping[str, Any],
        count: int,
        *,
        entropy_source: EntropySource | Mapping[str, Any] | None = None,
    ) -> list[GenerationSession]:
        """``POST /api/generate-batch``: ``count`` sessions for the same public parameters.

        Validated once by the authority; each session is single use, as from
        :meth:`start_generation`. Counts over :data:`MAX_BATCH` are split into
        several requests. Unredeemed sessions simply expire, so the call is
        retried like :meth:`start_generation`.

        Raises:
            InvalidRequest: ``count`` is not a positive integer.
            The errors of :meth:`start_generation`.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidRequest("count must be a positive integer")
        body = _generation_body(preset, parameters, entropy_source)
        out: list[GenerationSession] = []
        for start in range(0, count, MAX_BATCH):
            n = min(MAX_BATCH, count - start)
            data = self._object(
                self._request("POST", "/api/generate-batch", body={**body, "count": n}),
                "the session batch",
            )
            received = datetime.now(UTC)
            ids = data.get("generation_session_ids")
            if (
                not isinstance(ids, list)
                or len(ids) != n
                or not all(isinstance(i, str) and i for i in ids)
            ):
                raise _bad("field 'generation_session_ids' is missing or has the wrong length")
            common = {k: v for k, v in data.items() if k != "generation_session_ids"}
            out.extend(
                GenerationSession.from_dict(
                    {**common, "generation_session_id": sid}, received_at=received
                )
                for sid in ids
            )
        return out

    def issue_certificate(
        self,
        session_id: str | GenerationSession,
        *,
        credential_commitment: str | None = None,
        target: Target | Mapping[str, Any] | None = None,
        label: str | None = None,
    ) -> IssuedCertificate:
        """``POST /api/generate-certificate``: redeem a session for a signed certificate.

        Not retried after a read timeout (a replay would find the session used).

        Raises:
            SessionExpired: the session is older than 60 s.
            SessionAlreadyUsed: the session was redeemed before.
            SessionInvalid: forged, malformed or another tenant's session.
            InvalidRequest: a malformed target or label (locally or by the server).
        """
        sid = session_id.session_id if isinstance(session_id, GenerationSession) else session_id
        req = CertificateRequest(
            session_id=sid, credential_commitment=credential_commitment, target=target, label=label
        )
        data = self._request(
            "POST", "/api/generate-certificate", body=req.to_body(), idempotent=False
        )
        return IssuedCertificate.from_dict(self._object(data, "the certificate"))

    def issue_certificates(
        self, batch: Sequence[CertificateRequest]
    ) -> list[IssuedCertificate | PassgeniError]:
        """``POST /api/generate-certificates``: many sessions, many certificates.

        Returns one entry per request, in order: the certificate, or the error
        for that item (not raised: one bad session must not hide the others).
        Batches over :data:`MAX_BATCH` items or :data:`MAX_BATCH_BODY` bytes
        of JSON are split into several requests.

        Raises:
            InvalidRequest: a malformed item (checked locally before sending).
        """
        bodies = [item.to_body() for item in batch]
        out: list[IssuedCertificate | PassgeniError] = []
        for chunk in _split_bodies(bodies):
            data = self._object(
                self._request(
                    "POST",
                    "/api/generate-certificates",
                    body={"items": chunk},
                    idempotent=False,
                ),
                "the batch",
            )
            results = data.get("certificates")
            if not isinstance(results, list) or len(results) != len(chunk):
                raise _bad("field 'certificates' is missing or has the wrong length")
            for entry in results:
                if not isinstance(entry, dict):
                    raise _bad("a batch entry is not an object")
                err = entry.get("error")
                if isinstance(err, dict):
                    code = err.get("code")
                    msg = err.get("message")
                    cls = error_for_code(code) if isinstance(code, str) else AuthorityError
                    text = self._scrub(msg if isinstance(msg, str) else str(code))
                    out.append(AuthorityError(text) if cls is PassgeniError else cls(text))
                else:
                    out.append(IssuedCertificate.from_dict(entry))
        return out

    def get_certificate(self, cert_id: str) -> CertificateRecord:
        """``GET /api/certificates/{id}`` (public, no authentication).

        Raises:
            NotFound: no such certificate.
            InvalidRequest: an empty or malformed id.
        """
        return CertificateRecord.from_dict(
            self._object(
                self._request("GET", f"/api/certificates/{_quote_id(cert_id)}", auth=False),
                "the certificate record",
            )
        )

    def revoke(self, cert_id: str, reason: str) -> CertificateRecord:
        """``POST /api/certificates/{id}/revoke``: non-destructive; the record stays.

        Raises:
            NotFound: no such certificate, or another tenant's (no existence oracle).
            InvalidRequest: the reason is empty or longer than 500 characters.
        """
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise InvalidRequest("the revocation reason must be 1 to 500 characters")
        return CertificateRecord.from_dict(
            self._object(
                self._request(
                    "POST",
                    f"/api/certificates/{_quote_id(cert_id)}/revoke",
                    body={"reason": reason},
                ),
                "the certificate record",
            )
        )

    def audit(
        self,
        *,
        standard: str | None = None,
        status: CertificateStatus | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> AuditPage:
        """``GET /api/audit``: the caller's certificates (team-wide for team keys).

        Raises:
            InvalidRequest: a bad status, page or page size (checked locally).
        """
        if status is not None and status not in _STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}")
        if page < 1 or not 1 <= page_size <= 500:
            raise InvalidRequest("page must be >= 1 and page_size between 1 and 500")
        query = {
            "standard": standard,
            "status": status,
            "since": _iso(since) if isinstance(since, datetime) else since,
            "until": _iso(until) if isinstance(until, datetime) else until,
            "page": page,
            "page_size": page_size,
        }
        return AuditPage.from_dict(
            self._object(self._request("GET", "/api/audit", params=query), "the audit page")
        )

    # -- offline revocation and evidence ------------------------------------------------

    def _path_of(self, uri: str) -> str:
        """The path of ``uri`` on this authority (it may name the public issuer URL)."""
        if not isinstance(uri, str):
            raise InvalidRequest("a status list URI must be a string")
        for base in (self.issuer, self.base_url):
            if uri.startswith(base + "/"):
                path = uri[len(base) :]
                if "?" in path or "#" in path or ".." in path:
                    break
                return path
        raise InvalidRequest(
            f"status list {uri[:120]!r} is not served by this authority ({self.issuer})"
        )

    def status_list_uris(self) -> list[str]:
        """``GET /status``: the URI of every signed status list of the authority."""
        data = self._object(self._request("GET", "/status", auth=False), "the status lists")
        uris = data.get("status_lists")
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise _bad("field 'status_lists' is missing or not a list of strings")
        return list(uris)

    def get_status_list(self, uri: str) -> str:
        """The signed status list at ``uri`` (a certificate's ``status.status_list.uri``),
        as the compact JWT (``typ: statuslist+jwt``). Not verified here: pass it to
        :func:`passgeni_core.verify_status_list`.

        Raises:
            InvalidRequest: ``uri`` is not on this authority (its issuer or base URL).
            NotFound: no such list.
        """
        text = self._request("GET", self._path_of(uri), auth=False, raw=True)
        token = str(text).strip()
        if token.count(".") != 2:
            raise _bad("the status list is not a compact JWT")
        return token

    def signing_key_history(self) -> dict[str, Any]:
        """``GET /api/signing-keys``: every key the authority ever signed with
        (``keys``, a JWK Set) and when each was created and retired (``history``)."""
        data = self._object(
            self._request("GET", "/api/signing-keys", auth=False), "the signing keys"
        )
        JWKS.from_dict(data)  # raises InvalidRequest for a malformed set
        return data

    def sign_manifest(self, manifest_sha256: str) -> str:
        """``POST /api/evidence/sign-manifest``: the authority's ES256 signature
        (a ``passgeni-manifest+jwt`` token) over an evidence manifest's SHA-256 (hex)."""
        data = self._object(
            self._request(
                "POST", "/api/evidence/sign-manifest", body={"manifest_sha256": manifest_sha256}
            ),
            "the manifest signature",
        )
        return _str(data, "token")

    def iter_audit(self, **filters: Any) -> Iterator[CertificateRecord]:
        """Every certificate matching the :meth:`audit` filters, page after page."""
        page = 1
        while True:
            result = self.audit(page=page, **filters)
            yield from result.items
            if not result.items or not result.has_next:
                return
            page += 1


def _split_bodies(bodies: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks of at most MAX_BATCH items and about MAX_BATCH_BODY bytes of JSON."""
    chunk: list[dict[str, Any]] = []
    size = 16  # {"items":[...]}
    for body in bodies:
        item_size = len(json.dumps(body, separators=(",", ":"))) + 1
        if chunk and (len(chunk) >= MAX_BATCH or size + item_size > MAX_BATCH_BODY):
            yield chunk
            chunk, size = [], 16
        chunk.append(body)
        size += item_size
    if chunk:
        yield chunk


def _maybe_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the request may have reached the server before the connection failed."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3 wraps "could not connect" as NewConnectionError: nothing was sent.
    return type(reason).__name__ not in {"NewConnectionError", "NameResolutionError"}


def _quote_id(cert_id: str) -> str:
    if not isinstance(cert_id, str) or not cert_id.strip() or len(cert_id) > 200:
        raise InvalidRequest("a certificate id must be a non-empty string")
    # Quoted so an id can never change the path ("../", "?").
    return quote(cert_id.strip(), safe="")
