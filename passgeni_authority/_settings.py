"""Configuration of one authority process: a keyword-only, immutable dataclass.

Nothing here reads the environment: the CLI (an edge) merges flags, the
environment and defaults into an :class:`AuthoritySettings`, and the service
only ever sees the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from passgeni_core.model import FIPS_FLAG_PATH, LENIENT_RULE, STRICT_RULE

if TYPE_CHECKING:
    from ._signing import Signer

__all__ = ["DEFAULT_PUBLIC_URL", "AuthoritySettings", "RateLimits", "default_state_dir"]

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8787"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def default_state_dir() -> Path:
    """``$XDG_DATA_HOME/passgeni`` (``~/.local/share/passgeni``): per user, not per checkout."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "passgeni"


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """Abuse controls (the product's published defaults).

    ``None`` disables one limit. Automation API keys carry their own
    per-minute figure (``api_keys.rate_limit``) which replaces
    ``user_per_minute`` and widens the burst to match, and they are exempt from
    the per-IP generation limit: an operator created them on purpose for bulk
    rotation, and the key itself is the accountable identity.
    """

    #: Certificate generation attempts (``POST /api/generate``, each session of
    #: ``/api/generate-batch``) per client IP in any hour (a sliding window).
    generation_per_ip_per_hour: int | None = 10
    #: Authenticated requests per user in any minute (a sliding window).
    user_per_minute: int | None = 60
    #: Token bucket per user: ``burst`` requests at once, then ``refill_per_second``.
    burst: int | None = 5
    refill_per_second: float = 1.0
    #: Public certificate views (``/cert/{id}``, ``/api/certificates/{id}``) per
    #: client IP: a burst of this many, refilled evenly over a minute.
    views_per_ip_per_minute: int | None = 1200
    #: Failed authentications (no key, malformed, unknown or revoked) per client IP in
    #: a minute, per process; beyond, that IP is refused before any database work
    #: unless its key is known good (``_authfail``).
    failed_auth_per_ip_per_minute: int | None = 30

    @classmethod
    def unlimited(cls) -> RateLimits:
        return cls(
            generation_per_ip_per_hour=None,
            user_per_minute=None,
            burst=None,
            views_per_ip_per_minute=None,
            failed_auth_per_ip_per_minute=None,
        )


@dataclass(frozen=True, kw_only=True)
class AuthoritySettings:
    """Everything one authority process needs.

    ``database_url`` defaults to ``sqlite:///<state_dir>/authority.db`` (WAL).
    ``public_url`` is the base of every ``cert_url`` and, unless ``issuer``
    is set, the certificates' ``iss``: all processes of one authority must
    share both. ``issuer`` (e.g. ``passgeni.ai``) names the authority in the
    ``iss`` of its certificates, status lists and manifest signatures; a
    verifier must be told to expect it (``PASSGENI_ISSUER`` on the client).
    ``signer`` defaults to a :class:`LocalFileSigner` on ``state_dir/keys``.
    ``fips_strict`` picks the written FIPS rule its certificates state
    (``passgeni_core.model.FIPS_RULES``): ``True`` (a served authority's default)
    is ``strict-v1``, FIPS 140-3 only when this host is observed in FIPS mode and
    the client declares FIPS mode; ``False`` (the embedded one) is ``lenient-v1``,
    which lists it from the parameters and records what did not hold.
    ``fips_flag_path`` is where this host's FIPS mode is read (the kernel's flag;
    another file for a test or a container that mounts the host's ``/proc``
    elsewhere), once, when the service starts.
    """

    database_url: str | None = field(default=None, repr=False)
    public_url: str = DEFAULT_PUBLIC_URL
    #: The ``iss`` of everything signed; ``None``: the public URL.
    issuer: str | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    signer: Signer | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)
    fips_strict: bool = True
    #: The kernel flag the authority reads its own FIPS mode from (``"1"``: FIPS mode).
    fips_flag_path: Path = FIPS_FLAG_PATH
    clock: Callable[[], datetime] = field(default=_utcnow, repr=False)
    #: Lifetime of a generation session (the contract says 60 s).
    session_lifetime_seconds: int = 60
    #: More certificates than this by one user in 24 h records an anomaly event.
    anomaly_threshold_24h: int = 50
    #: Peers whose ``X-Forwarded-For`` is believed (a reverse proxy in front).
    trusted_proxies: tuple[str, ...] = ()
    #: How long a process may sign with a cached active key id after another
    #: process rotated (the old key stays in the JWKS, so this is harmless).
    key_cache_seconds: float = 5.0
    #: Request bodies larger than this are refused (413).
    max_body_bytes: int = 64 * 1024
    #: A request body must arrive within this many seconds of its first read (408).
    body_read_seconds: float = 10.0
    max_batch_items: int = 1000
    #: Run ``alembic upgrade head`` when the service starts.
    migrate_on_start: bool = True
    #: Entries per signed status list (1 bit each). 65,536 keeps the worst-case
    #: token (every bit random) under the verifier's 16 KiB token limit.
    status_list_size: int = 65_536
    #: ``exp`` of a served status list: verifiers refuse older snapshots.
    status_list_lifetime_seconds: int = 24 * 3600
    #: ``ttl``: how long a verifier may cache a list before fetching it again.
    status_list_ttl_seconds: int = 300
    #: SQLite: sync the WAL after a group commit on the event loop's own
    #: thread (the loop waits, ~0.3 ms) instead of a helper thread. With
    #: several worker processes on few cores the waiting loop leaves its CPU
    #: to the others, and the thread hand-off (a wake-up and a GIL exchange
    #: per group) is saved; ``serve --workers N`` (N >= 2) turns it on.
    #: Alone, the helper thread keeps the loop answering meanwhile.
    wal_sync_in_loop: bool = False
    #: Usage events older than this many days are deleted (never certificates);
    #: ``None`` keeps them all.
    event_retention_days: int | None = None
    #: How often the periodic job runs (aggregated refusals, retention).
    maintenance_seconds: float = 30.0
    #: POSTed every anomaly flag, signed with ``anomaly_webhook_secret`` (HMAC-SHA256).
    anomaly_webhook_url: str | None = None
    anomaly_webhook_secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        object.__setattr__(self, "fips_flag_path", Path(self.fips_flag_path))
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if self.issuer is not None and (
            not self.issuer.strip() or self.issuer != self.issuer.strip() or len(self.issuer) > 256
        ):
            raise ValueError("issuer must be a non-empty name without surrounding spaces")
        if self.session_lifetime_seconds <= 0:
            raise ValueError("session_lifetime_seconds must be positive")
        if self.event_retention_days is not None and self.event_retention_days < 1:
            raise ValueError("event_retention_days must be at least 1")
        if self.anomaly_webhook_url is not None and not self.anomaly_webhook_secret:
            raise ValueError("an anomaly webhook needs a secret to sign its requests")
        if not 8 <= self.status_list_size <= 65_536 or self.status_list_size % 8:
            raise ValueError("status_list_size must be a multiple of 8 between 8 and 65536")

    @property
    def effective_issuer(self) -> str:
        """The certificates' ``iss``: ``issuer`` when set, else the public URL."""
        return self.issuer or self.public_url

    @property
    def fips_rule(self) -> str:
        """The FIPS rule its certificates state: ``strict-v1`` or ``lenient-v1``."""
        return STRICT_RULE if self.fips_strict else LENIENT_RULE

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'authority.db'}"

    def __repr__(self) -> str:
        # The database URL may carry a password: show it with the password masked.
        from ._db import redact_url

        return (
            f"AuthoritySettings(database_url={redact_url(self.effective_database_url)!r}, "
            f"public_url={self.public_url!r}, issuer={self.effective_issuer!r}, state_dir={str(self.state_dir)!r}, "
            f"signer={self.signer!r}, rate_limits={self.rate_limits!r}, "
            f"fips_strict={self.fips_strict!r}, fips_flag_path={str(self.fips_flag_path)!r})"
        )
