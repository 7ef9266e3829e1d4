"""Alembic environment: runs on the connection that `referrals.adapters.sql.migrate` hands it."""

from alembic import context

from referrals.adapters.sql.schema import metadata

connection = context.config.attributes["connection"]
# Batch mode lets ALTERs run on SQLite, which rebuilds the table instead.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
