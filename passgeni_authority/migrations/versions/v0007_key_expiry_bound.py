"""Each signing key carries an upper bound on its certificates' expiry.

The JWKS keeps a retired key while any certificate it signed is unexpired.
That was answered by ``EXISTS`` over an index on certificates
``(kid, expires_at)``, an index every issuance wrote into and only the JWKS
read. ``signing_keys.last_expires_at`` answers it from the key's own row:
issuance raises it (with an hour to spare, so about once an hour per
process, see ``AuthorityService._note_expiry``), and this migration fills it
from the certificates already stored, exactly, before dropping the index.

Downgrade rebuilds the index and drops the column; nothing is lost.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from passgeni_authority._db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("last_expires_at", UTCDateTime, nullable=True))
    op.execute(
        "UPDATE signing_keys SET last_expires_at = "
        "(SELECT max(expires_at) FROM certificates WHERE certificates.kid = signing_keys.kid)"
    )
    op.drop_index("ix_certificates_kid_expires", table_name="certificates")


def downgrade() -> None:
    op.create_index("ix_certificates_kid_expires", "certificates", ["kid", "expires_at"])
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("last_expires_at")
