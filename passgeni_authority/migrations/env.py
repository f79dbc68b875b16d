"""Alembic environment: always run on the connection the authority hands over.

The authority calls ``alembic upgrade head`` programmatically at start-up
(see ``passgeni_authority/_db.py``) inside its cross-process start-up lock.
"""

from __future__ import annotations

from alembic import context

from passgeni_authority._db import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from the alembic CLI
    raise RuntimeError("run migrations through passgeni_authority (no connection given)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
