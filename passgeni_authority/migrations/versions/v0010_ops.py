"""Operating an authority (issue #19): operator keys, plans and quotas.

* ``api_keys.scope`` (added by 0009 for the dashboard) also makes an ``operator`` key
  read every tenant's events (``GET /api/events``); NULL for tenants' keys.
* ``plans``: the plans as data the operator edits (``passgeni authority
  plan``), seeded with the product's three: ``foundation`` (3 certificates
  per calendar month), ``assurance`` (unlimited), ``authority`` (unlimited,
  team-wide audit). ``monthly_certificates`` NULL is unlimited.
* ``users.plan`` / ``teams.plan``: the plan of a user or a team (a team's
  applies to its members' team keys); NULL: no plan, no quota.

Nothing existing changes meaning: no user has a plan until an operator says so.
Downgrade drops the two columns and the table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: The product's plans (docs/operations.md#plans-and-quotas).
SEED_PLANS = (
    {
        "name": "foundation",
        "monthly_certificates": 3,
        "team_audit": 0,
        "description": "3 certificates per calendar month",
    },
    {
        "name": "assurance",
        "monthly_certificates": None,
        "team_audit": 0,
        "description": "unlimited certificates",
    },
    {
        "name": "authority",
        "monthly_certificates": None,
        "team_audit": 1,
        "description": "unlimited certificates, API keys for teams and team-wide audit",
    },
)


def upgrade() -> None:
    plans = op.create_table(
        "plans",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("monthly_certificates", sa.Integer, nullable=True),
        sa.Column("team_audit", sa.Integer, nullable=False, server_default="0"),
        sa.Column("description", sa.Text, nullable=True),
    )
    op.bulk_insert(plans, list(SEED_PLANS))
    # Plain ADD COLUMN (SQLite has it): a batch copy of users or teams would
    # drop tables other tables' foreign keys refer to.
    op.add_column("users", sa.Column("plan", sa.String(32), nullable=True))
    op.add_column("teams", sa.Column("plan", sa.String(32), nullable=True))


def downgrade() -> None:
    for table, column in (("teams", "plan"), ("users", "plan")):
        if op.get_context().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # SQLite >= 3.35
        else:
            op.drop_column(table, column)
    op.drop_table("plans")
