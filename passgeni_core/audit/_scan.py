"""Coverage scan: which stored credentials are covered by a good certificate.

For every credential found under the scanned prefixes the scan reads the
store (value, version, metadata), fetches the certificates' public records from
the authority (in bulk: one lookup per 500 certificates), verifies each
signature offline against the authority's JWKS (fetched once per scan)
and checks it against what is stored: each credential is judged by
:func:`passgeni_core.workflows.assess` (see its statuses); every status but
``valid`` and ``expiring`` falls short (:data:`FAILING`).
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from .._errors import (
    AuthorityUnavailable,
    InvalidRequest,
    PassgeniError,
    RateLimited,
    StoreUnavailable,
    UnknownKey,
    one_line,
)
from .._untrusted import csv_cell
from ..client import (
    MAX_LOOKUP,
    AuthorityClient,
    CertificateRecord,
    ScanFindingBody,
    ScanSubmissionBody,
)
from ..crypto import JWKS, aware_now
from ..model import get_preset
from ..stores import SecretStore, StoredCredential, StoreURI, open_store, parse_store_uri
from ..workflows import STATUSES, CoverageEntry, assess


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CSV_FIELDS = (
    "uri",
    "status",
    "detail",
    "cert_id",
    "cert_url",
    "standard",
    "standards_met",
    "issued_at",
    "expires_at",
    "store_version",
    "certified_version",
    "revocation_reason",
)


@dataclass(frozen=True, kw_only=True)
class CoverageReport:
    """The result of :func:`scan`: one entry per credential, in scan order."""

    entries: tuple[CoverageEntry, ...]
    scanned_at: datetime
    require: str | None = None
    expiring_days: int = 30
    #: The scanned URIs that could not be listed (each also an ``error`` entry): a store
    #: unreachable, a prefix naming nothing (``store_not_found``), a mount that is not KV v2,
    #: permission denied. Their credentials were not judged: the report is incomplete.
    unlisted: tuple[CoverageEntry, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every URI was listed and nothing falls short (``valid``/``expiring`` only)."""
        return not self.unlisted and all(e.ok for e in self.entries)

    @property
    def complete(self) -> bool:
        """True when every scanned URI could be listed."""
        return not self.unlisted

    @property
    def unavailable(self) -> bool:
        """True when a store or the authority could not be reached (what was not checked)."""
        return any(
            isinstance(e.error, StoreUnavailable | AuthorityUnavailable) for e in self.entries
        )

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for entry in self.entries:
            out[entry.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "scanned_at": _iso(self.scanned_at),
            "require": self.require,
            "expiring_days": self.expiring_days,
            "ok": self.ok,
            "complete": self.complete,
            "unlisted": [e.uri for e in self.unlisted],
            "counts": self.counts(),
            "credentials": [e.to_dict() for e in self.entries],
        }

    def submissions(self, max_bytes: int = 60_000) -> list[ScanSubmissionBody]:
        """What ``scan --submit`` sends the authority's dashboard, in bodies under
        ``max_bytes`` (the authority's body limit is 64 KiB): each credential's store
        reference, status, reasons and certificate reference, never a value or a detail."""
        bodies: list[ScanSubmissionBody] = []
        chunk: list[ScanFindingBody] = []
        size = 0
        for e in self.entries:
            finding = ScanFindingBody(uri=e.uri, status=e.status, reasons=list(e.reasons))
            if e.cert_id:
                finding.cert_id = e.cert_id
            if e.standard:
                finding.standard = e.standard
            if e.expires_at is not None:
                finding.expires_at = e.expires_at
            cost = len(msgspec.json.encode(finding)) + 1
            if chunk and size + cost > max_bytes - 200:
                bodies.append(self._body(chunk))
                chunk, size = [], 0
            chunk.append(finding)
            size += cost
        bodies.append(self._body(chunk))
        return bodies

    def _body(self, findings: list[ScanFindingBody]) -> ScanSubmissionBody:
        body = ScanSubmissionBody(
            credentials=findings, scanned_at=self.scanned_at, expiring_days=self.expiring_days
        )
        if self.require:
            body.require = self.require
        return body

    def to_csv(self) -> str:
        """A certificate registry for a CMDB: one row per credential, :data:`CSV_FIELDS`."""
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=list(CSV_FIELDS), lineterminator="\n", quoting=csv.QUOTE_ALL
        )
        writer.writeheader()
        for entry in self.entries:
            row = entry.to_dict()
            row["standards_met"] = " ".join(entry.standards_met)
            # Details carry tenant text (revocation reasons): never a formula, never a new row.
            writer.writerow({k: csv_cell(row[k]) for k in CSV_FIELDS})
        return buf.getvalue()


def scan(
    client: AuthorityClient,
    uris: Iterable[str | StoreURI],
    *,
    require: str | None = None,
    expiring_days: int = 30,
    now: datetime | None = None,
    store_options: Mapping[str, Mapping[str, Any]] | None = None,
    opener: Callable[..., SecretStore] = open_store,
) -> CoverageReport:
    """Scan every credential under each URI (prefix or single) and assess it.

    ``store_options`` maps a scheme to options for its backend (e.g.
    ``{"vault": {"client": hvac_client}}``). A URI that cannot be listed (the
    store unreachable, no such mount or prefix, not KV v2, permission denied)
    is reported as one ``error`` entry for it, also in ``unlisted``, and the
    report is not ``ok``; the scan goes on with the other URIs.

    Raises:
        InvalidStoreURI / UnknownStoreScheme: a malformed URI or no backend (before scanning).
        UnknownPreset: ``require`` is not a preset id.
        InvalidRequest: ``expiring_days`` is negative.
    """
    if require is not None:
        require = get_preset(require).id
    if expiring_days < 0:
        raise InvalidRequest("expiring_days must be zero or more")
    at = aware_now(now)
    parsed = [parse_store_uri(u, allow_prefix=True) for u in uris]
    entries: list[CoverageEntry] = []
    unlisted: list[CoverageEntry] = []
    jwks: JWKS | None = None
    refreshed = False  # the JWKS is refetched at most once per scan, on an unknown kid

    def judge_in(system: str) -> Callable[[StoredCredential, Any], CoverageEntry]:
        asked = False  # the JWKS, once per scan (again per URI while it cannot be fetched)

        def judge(stored: StoredCredential, fetched: Any) -> CoverageEntry:
            nonlocal jwks, asked, refreshed
            if jwks is None and not asked:
                asked = True
                try:
                    jwks = client.jwks()
                except Exception:
                    jwks = None  # assess reports the error per credential

            def judged(record: Any) -> CoverageEntry:
                return assess(
                    client,
                    system,
                    stored,
                    jwks=jwks,
                    now=at,
                    expiring_days=expiring_days,
                    require=require,
                    fetched=record,
                )

            verdict = judged(fetched)
            if jwks is not None and not refreshed and UnknownKey.code in verdict.reasons:
                # A key the authority added during the scan (a rotation): ask once more.
                refreshed = True
                try:
                    jwks = client.jwks(refresh=True)
                except Exception:
                    return verdict
                verdict = judged(verdict.record or fetched)
            return verdict

        return judge

    for prefix in parsed:
        options = dict((store_options or {}).get(prefix.scheme, {}))
        try:
            store = opener(prefix, **options)
        except Exception as exc:
            if isinstance(exc, PassgeniError) and exc.code in (
                "invalid_store_uri",
                "unknown_store_scheme",
            ):
                raise
            unlisted.append(_unlisted(prefix, exc))
            entries.append(unlisted[-1])
            continue

        try:
            entries += _judged(client, store.list(prefix), judge_in(store.system))
        except Exception as exc:
            unlisted.append(_unlisted(prefix, exc))
            entries.append(unlisted[-1])
        finally:
            store.close()
    return CoverageReport(
        entries=tuple(entries),
        scanned_at=at,
        require=require,
        expiring_days=expiring_days,
        unlisted=tuple(unlisted),
    )


def _judged(
    client: AuthorityClient,
    listing: Iterator[StoredCredential],
    judge: Callable[[StoredCredential, CertificateRecord | PassgeniError | None], CoverageEntry],
) -> list[CoverageEntry]:
    """Every credential of ``listing`` judged, in listing order.

    The records are looked up :data:`MAX_LOOKUP` at a time in a thread of their own while
    the store is still being read, and each group is judged once its records are back:
    the lookups and the judging overlap the reading. A listing that fails part-way
    raises, and nothing of it is reported but that error (as when it was read whole first).
    """
    out: list[CoverageEntry] = []
    pending: deque[tuple[list[StoredCredential], Future[dict[str, Any]]]] = deque()

    def judge_first() -> None:
        group, records = pending.popleft()
        answers = records.result()
        out.extend(judge(s, answers.get(s.refs.cert_id) if s.refs else None) for s in group)

    with ThreadPoolExecutor(1) as lookups:
        group: list[StoredCredential] = []
        for stored in listing:
            group.append(stored)
            if len(group) == MAX_LOOKUP:
                pending.append((group, lookups.submit(_lookup, client, group)))
                group = []
            while pending and pending[0][1].done():
                judge_first()
        if group:
            pending.append((group, lookups.submit(_lookup, client, group)))
        while pending:
            judge_first()
    return out


def _lookup(client: AuthorityClient, found: list[StoredCredential]) -> dict[str, Any]:
    """The authority's records of the certificates ``found`` names, in bulk.

    One ``POST /api/certificates/lookup`` per 500 certificates instead of one
    ``GET`` each: the very records (tokens, status, revocation) the judge would
    fetch, as fresh. An id the authority refused for its view limit, or every
    id when the lookup fails as a whole (an older authority without it, say), is
    left out: the judge then asks for it alone, as it always did.
    """
    ids = [s.refs.cert_id for s in found if s.password is not None and s.refs is not None]
    if not ids:
        return {}
    try:
        answers = client.get_certificates(ids)
    except Exception:
        return {}
    return {k: v for k, v in answers.items() if not isinstance(v, RateLimited)}


def _unlisted(prefix: StoreURI, exc: Exception) -> CoverageEntry:
    return CoverageEntry(
        uri=str(prefix), status="error", detail=one_line(exc, with_code=True), error=exc
    )
