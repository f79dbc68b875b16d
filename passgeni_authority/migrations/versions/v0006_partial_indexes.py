"""Indexes that issuance does not write when nothing will read them.

Every certificate insert wrote an entry into ``ix_certificates_team_issued_id``
even when ``team_id`` is NULL (a personal key: the team audit never looks
for NULL), and every usage event (three per certificate: two API accesses and
the generation) an entry into ``ix_usage_events_kind_user_at``, which only
the anomaly queries read. Each index is one more B-tree whose newest pages a
group commit rewrites. Both become partial:

* ``ix_certificates_team_issued_id`` covers team certificates only
  (``WHERE team_id IS NOT NULL``; the team audit's ``team_id = ?`` implies it,
  for SQLite's planner and PostgreSQL's alike);
* ``ix_usage_events_anomaly_user_at`` on ``(user_id, at)`` covers anomaly
  events only (``WHERE kind = 'anomaly'``; the queries spell the literal, so
  the planner can match it).

Measured with the two-step benchmark, interleaved rounds: see docs/performance.md (history).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TEAM = sa.text("team_id IS NOT NULL")
_ANOMALY = sa.text("kind = 'anomaly'")


def upgrade() -> None:
    op.drop_index("ix_certificates_team_issued_id", table_name="certificates")
    op.create_index(
        "ix_certificates_team_issued_id",
        "certificates",
        ["team_id", "issued_at", "cert_id"],
        sqlite_where=_TEAM,
        postgresql_where=_TEAM,
    )
    op.create_index(
        "ix_usage_events_anomaly_user_at",
        "usage_events",
        ["user_id", "at"],
        sqlite_where=_ANOMALY,
        postgresql_where=_ANOMALY,
    )
    op.drop_index("ix_usage_events_kind_user_at", table_name="usage_events")


def downgrade() -> None:
    op.create_index("ix_usage_events_kind_user_at", "usage_events", ["kind", "user_id", "at"])
    op.drop_index("ix_usage_events_anomaly_user_at", table_name="usage_events")
    op.drop_index("ix_certificates_team_issued_id", table_name="certificates")
    op.create_index(
        "ix_certificates_team_issued_id", "certificates", ["team_id", "issued_at", "cert_id"]
    )
