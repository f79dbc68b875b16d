"""Signing keys and the JWKS: which key signs now, which keys verifiers still need."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from passgeni_core import AuthorityError

from . import _hot, _sql
from ._db import signing_keys
from ._models import SigningKeyInfo
from ._settings import AuthoritySettings
from ._signing import JWSBuilder, NewKey, Signer
from ._storage import Storage
from ._util import now

__all__ = ["LAST_EXPIRY_SLACK", "SigningKeys"]

log = logging.getLogger("passgeni_authority")

#: Headroom of ``signing_keys.last_expires_at`` (see :meth:`SigningKeys.note_expiry`).
LAST_EXPIRY_SLACK = timedelta(hours=1)


def add_key(conn: Connection, new: NewKey, at: datetime) -> None:
    """Make ``new`` the active key (the previous one is retired), in ``conn``."""
    conn.execute(
        update(signing_keys).where(signing_keys.c.retired_at.is_(None)).values(retired_at=at)
    )
    conn.execute(
        insert(signing_keys).values(
            kid=new.kid,
            public_jwk=json.dumps(new.public_jwk, separators=(",", ":")),
            signer_ref=new.signer_ref,
            created_at=at,
            retired_at=None,
        )
    )
    log.info("signing key %s is now active", new.kid)


def ensure_key(conn: Connection, signer: Signer, at: datetime) -> None:
    """Create the first signing key if the database has no active one (start-up)."""
    active = conn.execute(
        select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None))
    ).first()
    if active is None:
        add_key(conn, signer.create_key(), at)


class SigningKeys:
    """The active key (cached for ``settings.key_cache_seconds``), rotation,
    the JWKS and each key's expiry bound."""

    def __init__(self, settings: AuthoritySettings, storage: Storage, signer: Signer) -> None:
        self.settings = settings
        self.storage = storage
        self.signer = signer
        self.jws = JWSBuilder(signer)
        self._lock = threading.Lock()
        self._active: tuple[str, str, float] | None = None  # kid, signer_ref, loaded (monotonic)
        # kid -> the signing_keys.last_expires_at this process committed (see note_expiry).
        self._expiry_bounds: dict[str, datetime] = {}

    def active(self, conn: Connection) -> tuple[str, str]:
        """``(kid, signer_ref)`` of the key that signs now.

        Raises:
            AuthorityError: the authority has no active key.
        """
        cached = self._active
        if cached is not None and time.monotonic() - cached[2] < self.settings.key_cache_seconds:
            return cached[0], cached[1]
        row = conn.execute(
            select(signing_keys.c.kid, signing_keys.c.signer_ref)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.created_at.desc())
        ).first()
        if row is None:
            raise AuthorityError("the authority has no active signing key")
        self._active = (row.kid, row.signer_ref, time.monotonic())
        return row.kid, row.signer_ref

    def note_expiry(self, conn: Connection, kid: str, expires_at: datetime) -> None:
        """Raise ``kid``'s ``last_expires_at`` to cover a certificate expiring at
        ``expires_at`` (the JWKS keeps a retired key while it is in the future).

        The bound is written with :data:`LAST_EXPIRY_SLACK` to spare, so a
        process updates the key's row about once per slack period instead of
        once per commit; a retired key stays published that much longer at
        most (a public key: harmless).
        """
        bound = self._expiry_bounds.get(kid)
        if bound is not None and expires_at <= bound:
            return
        new_bound = expires_at + LAST_EXPIRY_SLACK
        _hot.execute(conn, _sql.RAISE_LAST_EXPIRY, {"kid": kid, "bound": _hot.dt(conn, new_bound)})
        _hot.after_commit(conn, lambda: self._expiry_bounds.__setitem__(kid, new_bound))

    def jwks(self) -> dict[str, Any]:
        """Every public key whose certificates can still be verified (RFC 7517).

        The active key, plus each retired key while any of its certificates
        is unexpired (revoked ones included: a verifier should still learn
        the certificate is genuine, then see it revoked).

        Raises:
            AuthorityUnavailable: the database failed.
        """
        live = signing_keys.c.last_expires_at > now(self.settings)
        with self.storage.transaction() as conn:
            rows = conn.execute(
                select(signing_keys.c.public_jwk)
                .where(or_(signing_keys.c.retired_at.is_(None), live))
                # The active key first, then newest first.
                .order_by(
                    signing_keys.c.retired_at.is_not(None),
                    signing_keys.c.retired_at.desc(),
                    signing_keys.c.created_at.desc(),
                )
            ).all()
        return {"keys": [json.loads(row[0]) for row in rows]}

    def rotate(self) -> SigningKeyInfo:
        """Create a new signing key and make it active; the old one is retired
        (it stays in the JWKS until its last certificate expires).

        Raises:
            AuthorityError / AuthorityUnavailable: the signer or the database failed.
        """
        new = self.signer.create_key()
        at = now(self.settings)
        with self.storage.transaction() as conn:
            add_key(conn, new, at)
        with self._lock:
            self._active = None
        return SigningKeyInfo(kid=new.kid, created_at=at, retired_at=None)

    def history(self) -> list[SigningKeyInfo]:
        """Every key this authority ever used, newest first. Raises AuthorityUnavailable."""
        with self.storage.transaction() as conn:
            rows = conn.execute(
                select(
                    signing_keys.c.kid, signing_keys.c.created_at, signing_keys.c.retired_at
                ).order_by(signing_keys.c.created_at.desc())
            ).all()
        return [
            SigningKeyInfo(kid=r.kid, created_at=r.created_at, retired_at=r.retired_at)
            for r in rows
        ]
