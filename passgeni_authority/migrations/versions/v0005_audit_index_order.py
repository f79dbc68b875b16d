"""Audit pages read in index order.

The audit lists certificates newest first, then by id. The indexes on
``(owner_user_id, issued_at)`` and ``(team_id, issued_at)`` gave the first
key only, and claims carry whole seconds, so every page sorted all the
certificates of its seconds in a temporary B-tree before skipping to its
offset: with 90,000 certificates of one automation key, paging through the
audit took minutes. With the id in the index, and the tie broken by
``cert_id DESC`` so that one backward walk gives the whole order, a page is
a walk along the index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_certificates_owner_issued_id",
        "certificates",
        ["owner_user_id", "issued_at", "cert_id"],
    )
    op.create_index(
        "ix_certificates_team_issued_id", "certificates", ["team_id", "issued_at", "cert_id"]
    )
    op.drop_index("ix_certificates_owner_issued", table_name="certificates")
    op.drop_index("ix_certificates_team_issued", table_name="certificates")


def downgrade() -> None:
    op.create_index("ix_certificates_owner_issued", "certificates", ["owner_user_id", "issued_at"])
    op.create_index("ix_certificates_team_issued", "certificates", ["team_id", "issued_at"])
    op.drop_index("ix_certificates_owner_issued_id", table_name="certificates")
    op.drop_index("ix_certificates_team_issued_id", table_name="certificates")
