"""Initial schema: users, teams, API keys, sessions, certificates, keys, events, rate limits.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from passgeni_authority._db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authority_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("rate_limit", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )
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
    op.create_table(
        "certificates",
        sa.Column("cert_id", sa.String(40), primary_key=True),
        sa.Column("owner_user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("session_jti", sa.String(40), nullable=True, unique=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("claims", sa.Text, nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("compliance_standard", sa.String(64), nullable=False),
        sa.Column("standards_met", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("revocation_reason", sa.Text, nullable=True),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("status_list_idx", sa.Integer, nullable=True, unique=True),
    )
    op.create_index("ix_certificates_owner_issued", "certificates", ["owner_user_id", "issued_at"])
    op.create_index("ix_certificates_team_issued", "certificates", ["team_id", "issued_at"])
    op.create_index("ix_certificates_kid_expires", "certificates", ["kid", "expires_at"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("signer_ref", sa.String(256), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("retired_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_usage_events_kind_user_at", "usage_events", ["kind", "user_id", "at"])
    op.create_table(
        "rate_limit_buckets",
        sa.Column("bucket", sa.String(200), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "rate_limit_buckets",
        "usage_events",
        "signing_keys",
        "certificates",
        "generation_sessions",
        "api_keys",
        "users",
        "teams",
        "authority_meta",
    ):
        op.drop_table(name)
