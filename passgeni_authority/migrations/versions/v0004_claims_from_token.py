"""Certificates keep their claims only inside the signed token.

``certificates.claims`` held the same JSON as the token's payload, byte for
byte (it was serialised once and signed). At ~800 bytes beside a ~1,260-byte
token it made every row larger than half a 4 KiB page, so SQLite fitted one
certificate per page; without it three fit, and issuance writes a third of
the pages. The service now reads claims from the token.

Downgrade restores the column from the tokens, so nothing is lost either way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import base64

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("claims")


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("claims", sa.Text, nullable=True))
    conn = op.get_bind()
    certs = sa.table(
        "certificates",
        sa.column("cert_id", sa.String),
        sa.column("token", sa.Text),
        sa.column("claims", sa.Text),
    )
    for cert_id, token in conn.execute(sa.select(certs.c.cert_id, certs.c.token)).all():
        payload = token.split(".")[1]
        claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
        conn.execute(certs.update().where(certs.c.cert_id == cert_id).values(claims=claims))
    with op.batch_alter_table("certificates") as batch:
        batch.alter_column("claims", existing_type=sa.Text, nullable=False)
