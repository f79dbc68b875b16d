"""Offline revocation: a counter that hands out status-list indexes.

Certificates issued from now on carry ``status.status_list {idx, uri}``; the
global index is kept in ``certificates.status_list_idx`` (a column reserved by
0001, nullable: certificates issued before this revision simply carry no
status reference and keep verifying as before). The list a certificate lives
in is ``idx // status_list_size``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counter = op.create_table(
        "status_list_counter",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("next_idx", sa.Integer, nullable=False),
    )
    # Start after any index already used (none in practice: 0001 never set one).
    bind = op.get_bind()
    used = bind.execute(sa.text("SELECT MAX(status_list_idx) FROM certificates")).scalar()
    op.bulk_insert(counter, [{"name": "default", "next_idx": 0 if used is None else used + 1}])


def downgrade() -> None:
    op.drop_table("status_list_counter")
