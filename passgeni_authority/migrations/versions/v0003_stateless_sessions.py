"""Stateless generation sessions: one row per distinct request, not per session.

A session token (HS256, see ``_sessions``) now carries ``rq``, the digest of
its re-validated generation request, and the request itself is stored once
per distinct request in ``generation_requests``. Single use is the unique
``certificates.session_jti`` (0001): the certificate insert is the redemption.
Opening a session therefore writes no row, and redeeming one writes only the
certificate.

``generation_sessions`` is dropped: its rows only mattered for 60 s. Tokens
issued before this revision carry no ``rq`` and are refused as invalid
(clients open a new session).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from passgeni_authority._db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generation_requests",
        sa.Column("digest", sa.String(32), primary_key=True),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.drop_index("ix_generation_sessions_expires_at", table_name="generation_sessions")
    op.drop_table("generation_sessions")


def downgrade() -> None:
    op.create_table(
        "generation_sessions",
        sa.Column("jti", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("redeemed_at", UTCDateTime, nullable=True),
        sa.Column("request", sa.Text, nullable=False),
    )
    op.create_index("ix_generation_sessions_expires_at", "generation_sessions", ["expires_at"])
    op.drop_table("generation_requests")
