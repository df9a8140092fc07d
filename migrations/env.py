"""Alembic environment: runs recsys-db migrations on the configured server.

The version table is `public.recsys_alembic_version` (outside schema `recsys`, so dropping the
schema on downgrade does not pull the table from under Alembic); `recsys-db migrate --to base`
drops it too. Autogenerate compares only schema `recsys`, ignoring partitions.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from recsys_db.migrate import VERSION_TABLE, include_name
from recsys_db.orm import Base
from recsys_db.sqlfiles import apply


def _configure(connection) -> None:  # noqa: ANN001
    # pgvector's settings must be known before a revision names them in a function's SET clause
    # (a role that is not a superuser may not name an unknown one): see sql/load_vector.sql.
    apply(connection, "load_vector.sql")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_schemas=True,
        include_name=include_name,
        transaction_per_migration=True,
    )


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from recsys_db.db import database_url

    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("recsys-db migrations run online only (they read SQL files and the catalog)")
run()
