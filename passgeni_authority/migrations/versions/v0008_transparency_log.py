"""The transparency log: its size row and its leaves (docs/transparency-log.md).

Certificates stored before the log existed are appended to it here, so the
log holds every certificate the authority ever issued: their issuance leaves
first, in issuance order (``issued_at``, then ``cert_id``), then a revocation
leaf for each revoked one, in revocation order. Their leaf times are the
stored ones; nothing in them is invented.

Downgrade drops both tables (the log is lost; the certificates are not).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from passgeni_core.crypto import issuance_leaf, leaf_hash, revocation_leaf

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transparency_log",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    leaves = op.create_table(
        "log_leaves",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cert_id", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=True),
    )
    op.create_index("ix_log_leaves_cert_id", "log_leaves", ["cert_id"])
    bind = op.get_bind()
    certs = sa.table(
        "certificates",
        sa.column("cert_id"),
        sa.column("token"),
        sa.column("status"),
        sa.column("issued_at"),
        sa.column("revoked_at", sa.DateTime),
        sa.column("revocation_reason"),
    )
    rows: list[dict[str, object]] = []
    for cert_id, token in bind.execute(
        sa.select(certs.c.cert_id, certs.c.token).order_by(certs.c.issued_at, certs.c.cert_id)
    ):
        data = issuance_leaf(token)
        rows.append(
            {
                "idx": len(rows),
                "leaf_hash": leaf_hash(data),
                "kind": "issuance",
                "cert_id": cert_id,
                "data": None,
            }
        )
    revoked = bind.execute(
        sa.select(certs.c.cert_id, certs.c.revoked_at, certs.c.revocation_reason)
        .where(certs.c.status == "revoked", certs.c.revoked_at.is_not(None))
        .order_by(certs.c.revoked_at, certs.c.cert_id)
    )
    for cert_id, revoked_at, reason in revoked:
        at = datetime.fromisoformat(revoked_at) if isinstance(revoked_at, str) else revoked_at
        data = revocation_leaf(cert_id, at, reason or "")
        rows.append(
            {
                "idx": len(rows),
                "leaf_hash": leaf_hash(data),
                "kind": "revocation",
                "cert_id": cert_id,
                "data": data.decode(),
            }
        )
    if rows:
        op.bulk_insert(leaves, rows)
    op.execute(
        sa.text("INSERT INTO transparency_log (name, size) VALUES ('default', :size)").bindparams(
            size=len(rows)
        )
    )


def downgrade() -> None:
    op.drop_index("ix_log_leaves_cert_id", table_name="log_leaves")
    op.drop_table("log_leaves")
    op.drop_table("transparency_log")
