"""The HTTP transport of :class:`~passgeni_core.AuthorityClient`.

Transport behaviour:

* Connection errors, ``503`` (and ``502``/``504`` for idempotent calls) are
  retried with exponential backoff (``backoff * 2**attempt``, jittered).
* ``429`` is retried after the server's ``Retry-After`` when that is at most
  ``max_retry_after`` seconds; a longer wait raises :class:`RateLimited` at
  once (with ``retry_after``) rather than blocking a caller for an hour.
* A read timeout is retried only for idempotent calls. Redemptions
  (``generate-certificate(s)``) are idempotent: the authority answers an
  identical retry with the certificate it already made (see docs/reliability.md),
  so a lost answer never leaves a certificate for a password nobody kept.
* Redirects are not followed, so the API key can never be replayed to
  another URL; a 3xx is reported as a configuration error.
* Error bodies ``{code, message}`` become the core's exception for ``code``
  (:func:`passgeni_core.error_for_code`).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, Self
from urllib.parse import urlsplit

import requests

from .._errors import (
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
from ..crypto import JWKS
from ..model import is_embedded_issuer
from ._models import _bad

#: Server messages are shown to users; keep them bounded.
_MAX_MESSAGE = 500
_USER_AGENT = "passgeni-client/0.1"


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


def _normalise_issuer(issuer: str) -> str:
    """An expected ``iss``: a URL is normalised as the base URL is; a name
    (``passgeni.ai``, an authority's configured issuer) is taken as it is."""
    if not isinstance(issuer, str):
        raise InvalidRequest("the expected issuer must be a string")
    if "://" in issuer:
        return _normalise_base_url(issuer)
    if not issuer or len(issuer) > 256 or not issuer.isprintable() or issuer != issuer.strip():
        raise InvalidRequest(
            "the expected issuer must be a URL or a printable name of at most 256 characters"
        )
    return issuer


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


class _Transport:
    """Connection, retries, error mapping, and the public keys every caller needs.

    The JWKS is cached here because verifying anything the authority answers
    starts with it.
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
        #: The ``iss`` certificates from this authority carry: its public base URL,
        #: the name it was configured with (``serve --issuer passgeni.ai``), or an
        #: embedded authority's ``embedded:<id>``.
        self.issuer = (
            issuer
            if is_embedded_issuer(issuer)
            else (_normalise_issuer(issuer) if issuer else self.base_url)
        )
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

    def __enter__(self) -> Self:
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
                if idempotent and not last:
                    self._sleep(self._delay(attempt))
                    continue
                raise AuthorityUnavailable(
                    f"{what}: no answer within {self.timeout:g}s"
                    + ("" if idempotent else "; the request may or may not have been applied")
                ) from None
            except requests.exceptions.ConnectionError as exc:
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

    # -- discovery (no authentication) -------------------------------------------------

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
