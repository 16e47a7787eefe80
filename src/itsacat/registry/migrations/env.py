"""Run the registry's migrations on the connection that `itsacat.registry.database` passes.

The registry always migrates programmatically, inside a transaction it has already begun and
locked, so this file never opens a connection of its own.
"""

from __future__ import annotations

from alembic import context

from itsacat.registry.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the registry migrations run through itsacat.registry.open_registry, "
                       "which passes a connection; they have no alembic.ini of their own")

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
