"""HTTP client for a PassGeni authority (the public API or a self-hosted one).

The client never sees a password or a binding key: its methods take only
public parameters, a generation session id and a credential *commitment*.
The API key travels in the ``Authorization`` header of ``/api/*`` calls and
nowhere else: not in URLs, messages, reprs or exceptions.

See :mod:`passgeni_core.client._transport` for retries, timeouts and redirects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from .._errors import (
    AuthorityError,
    InvalidRequest,
    PassgeniError,
    error_for_code,
)
from ..model import EntropySource, GenerationParameters, Target
from ._evidenceclient import EvidenceCalls, _quote_id
from ._models import (
    _STATUSES,
    AuditPage,
    CertificateRecord,
    CertificateRequest,
    GenerationSession,
    IssuedCertificate,
    _bad,
    _iso,
    decode,
)
from ._wire import (
    CertificateStatus,
    GenerateBody,
    GenerationBatchBody,
    IssuedBatchBody,
    IssueErrorBody,
    LookupAnswerBody,
    LookupBody,
    RevokeBody,
)

#: The authority's limit on one batch request; larger batches are split.
MAX_BATCH = 1000
#: The authority's limit on the ids of one lookup; more are sent in several requests.
MAX_LOOKUP = 500
#: The authority refuses request bodies over 64 KiB; batches are also split to stay under this.
MAX_BATCH_BODY = 60_000


def _generation_body(
    preset: str,
    parameters: GenerationParameters | Mapping[str, Any],
    entropy_source: EntropySource | Mapping[str, Any] | None,
    seed_commitment: str | None = None,
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
    body = GenerateBody(compliance_standard=preset, parameters=params.to_dict())
    if seed_commitment is not None:
        body.seed_commitment = seed_commitment
    if entropy_source is not None:
        source = (
            entropy_source
            if isinstance(entropy_source, EntropySource)
            else EntropySource.from_dict(dict(entropy_source))
        )
        body.entropy_source = source.to_dict()
    out: dict[str, Any] = msgspec.to_builtins(body)
    return out


class AuthorityClient(EvidenceCalls):
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

    #: Items per batch request; larger batches are split (the authority's limit,
    #: lower it to exercise the splitting).
    max_batch: int = MAX_BATCH

    def start_generation(
        self,
        preset: str,
        parameters: GenerationParameters | Mapping[str, Any],
        *,
        entropy_source: EntropySource | Mapping[str, Any] | None = None,
        seed_commitment: str | None = None,
    ) -> GenerationSession:
        """``POST /api/generate``: register public parameters, get a 60-second session.

        ``parameters`` are validated locally first, so nothing but the
        parameter fields (never a password) can be sent. ``seed_commitment``
        (required by the authority, see :func:`passgeni_core.crypto.seed_commitment`)
        commits to the seed the password will be derived from with the session's
        ``authority_nonce``.

        Raises:
            InvalidParameters (and subclasses): invalid parameters (locally or by the server).
            UnknownPreset / PresetNotMet: as re-checked by the authority.
        """
        body = _generation_body(preset, parameters, entropy_source, seed_commitment)
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
        seed_commitments: Sequence[str] | None = None,
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
        if seed_commitments is not None and len(seed_commitments) != count:
            raise InvalidRequest("give one seed commitment per session")
        body = _generation_body(preset, parameters, entropy_source)
        out: list[GenerationSession] = []
        for start in range(0, count, self.max_batch):
            n = min(self.max_batch, count - start)
            chunk: dict[str, Any] = {**body, "count": n}
            if seed_commitments is not None:
                chunk["seed_commitments"] = list(seed_commitments[start : start + n])
            data = self._object(
                self._request("POST", "/api/generate-batch", body=chunk),
                "the session batch",
            )
            received = datetime.now(UTC)
            batch = decode(data, GenerationBatchBody)
            if len(batch.generation_session_ids) != n:
                raise _bad("field 'generation_session_ids' has the wrong length")
            nonces: list[str | None] = list(batch.authority_nonces) or [None] * n
            if len(nonces) != n:
                raise _bad("field 'authority_nonces' has the wrong length")
            out.extend(
                GenerationSession.from_body(batch, sid, received_at=received, nonce=nonce)
                for sid, nonce in zip(batch.generation_session_ids, nonces, strict=True)
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
            SessionAlreadyUsed: the session was redeemed before for another target
                or label, or its certificate was revoked since (an identical retry
                gets the same certificate back).
            SessionInvalid: forged, malformed or another tenant's session.
            InvalidRequest: a malformed target or label (locally or by the server).
        """
        sid = session_id.session_id if isinstance(session_id, GenerationSession) else session_id
        req = CertificateRequest(
            session_id=sid, credential_commitment=credential_commitment, target=target, label=label
        )
        # Safe to re-send: the authority answers a retried redemption (same
        # session, target and label) with the certificate it already made.
        data = self._request("POST", "/api/generate-certificate", body=req.to_body())
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
        for chunk in _split_bodies(bodies, self.max_batch):
            data = self._object(
                self._request(
                    "POST",
                    "/api/generate-certificates",
                    body={"items": chunk},
                ),
                "the batch",
            )
            results = decode(data, IssuedBatchBody).certificates
            if len(results) != len(chunk):
                raise _bad("field 'certificates' has the wrong length")
            for entry in results:
                if not isinstance(entry, dict):
                    raise _bad("a batch entry is not an object")
                if "error" in entry:
                    err = decode(entry, IssueErrorBody).error
                    cls = error_for_code(err.code)
                    text = self._scrub(err.message)
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

    def get_certificates(
        self, cert_ids: Sequence[str]
    ) -> dict[str, CertificateRecord | PassgeniError]:
        """``POST /api/certificates/lookup`` (public): the records of many certificates.

        One request per :data:`MAX_LOOKUP` ids (each id still counts as one view
        towards the authority's per-IP view limit). Returns, for each distinct id,
        its record or the error for that id (``NotFound``: not raised, one unknown
        id must not hide the others); the record is exactly what
        :meth:`get_certificate` returns.

        Raises:
            InvalidRequest: an empty id.
            AuthorityError / AuthorityUnavailable / RateLimited: the request failed.
        """
        wanted = list(dict.fromkeys(cert_ids))
        if any(not isinstance(i, str) or not i for i in wanted):
            raise InvalidRequest("a certificate id must be a non-empty string")
        out: dict[str, CertificateRecord | PassgeniError] = {}
        for start in range(0, len(wanted), MAX_LOOKUP):
            chunk = wanted[start : start + MAX_LOOKUP]
            data = self._object(
                self._request(
                    "POST",
                    "/api/certificates/lookup",
                    body=msgspec.to_builtins(LookupBody(cert_ids=chunk)),
                    auth=False,
                ),
                "the lookup",
            )
            entries = decode(data, LookupAnswerBody).certificates
            if len(entries) != len(chunk):
                raise _bad("field 'certificates' has the wrong length")
            for cert_id, entry in zip(chunk, entries, strict=True):
                if not isinstance(entry, dict):
                    raise _bad("a lookup entry is not an object")
                if "error" in entry:
                    err = decode(entry, IssueErrorBody).error
                    cls = error_for_code(err.code)
                    text = self._scrub(err.message)
                    out[cert_id] = AuthorityError(text) if cls is PassgeniError else cls(text)
                else:
                    record = CertificateRecord.from_dict(entry)
                    if record.cert_id != cert_id:
                        raise _bad("a lookup entry names another certificate")
                    out[cert_id] = record
        return out

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
                    body=msgspec.to_builtins(RevokeBody(reason=reason)),
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

    def iter_audit(self, **filters: Any) -> Iterator[CertificateRecord]:
        """Every certificate matching the :meth:`audit` filters, page after page."""
        page = 1
        while True:
            result = self.audit(page=page, **filters)
            yield from result.items
            if not result.items or not result.has_next:
                return
            page += 1


def _split_bodies(
    bodies: Sequence[dict[str, Any]], max_batch: int
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks of at most ``max_batch`` items and about MAX_BATCH_BODY bytes of JSON."""
    chunk: list[dict[str, Any]] = []
    size = 16  # {"items":[...]}
    for body in bodies:
        item_size = len(json.dumps(body, separators=(",", ":"))) + 1
        if chunk and (len(chunk) >= max_batch or size + item_size > MAX_BATCH_BODY):
            yield chunk
            chunk, size = [], 16
        chunk.append(body)
        size += item_size
    if chunk:
        yield chunk
