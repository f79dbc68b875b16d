"""The dashboard: operator keys, dashboard sessions and submitted scans.

``api_keys.scope`` (``"operator"``: the dashboard shows every team) is new and
empty for existing keys. ``dashboard_sessions`` holds signed-in dashboards (the
SHA-256 of the cookie's random id, never the id or the API key); ``dashboard_targets``
each certificate's target and label, copied from its token when a dashboard first looks.
``scan_reports``/``scan_findings`` hold what ``passgeni scan --submit`` sent:
store references and statuses only, never a value.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from passgeni_authority._db import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scope", sa.String(16), nullable=True))
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("scope", sa.String(16), nullable=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "dashboard_targets",
        sa.Column(
            "cert_id", sa.String(40), sa.ForeignKey("certificates.cert_id"), primary_key=True
        ),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
    )
    op.create_index("ix_dashboard_targets_system_path", "dashboard_targets", ["system", "path"])
    op.create_table(
        "scan_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("submitted_at", UTCDateTime, nullable=False),
        sa.Column("scanned_at", UTCDateTime, nullable=False),
        sa.Column("require", sa.String(64), nullable=True),
        sa.Column("expiring_days", sa.Integer, nullable=False),
        sa.Column("credentials", sa.Integer, nullable=False),
        sa.Column("failing", sa.Integer, nullable=False),
    )
    op.create_index("ix_scan_reports_team_submitted", "scan_reports", ["team_id", "submitted_at"])
    op.create_table(
        "scan_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.Integer, sa.ForeignKey("scan_reports.id"), nullable=False),
        sa.Column("uri", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reasons", sa.String(512), nullable=False),
        sa.Column("cert_id", sa.String(40), nullable=True),
        sa.Column("standard", sa.String(64), nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_scan_findings_report", "scan_findings", ["report_id"])


def downgrade() -> None:
    op.drop_index("ix_scan_findings_report", table_name="scan_findings")
    op.drop_table("scan_findings")
    op.drop_index("ix_scan_reports_team_submitted", table_name="scan_reports")
    op.drop_table("scan_reports")
    op.drop_index("ix_dashboard_targets_system_path", table_name="dashboard_targets")
    op.drop_table("dashboard_targets")
    op.drop_index("ix_dashboard_sessions_expires_at", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scope")
