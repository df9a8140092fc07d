"""Foundation: schema recsys, events (partitioned), catalog, registry, vectors, ingestion rules.

Revision ID: 0001
Revises:
"""

from alembic import op

from recsys_db.sqlfiles import apply

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    had_vector = bind.exec_driver_sql(
        "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
    ).first()
    bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    apply(bind, "0001_schema.sql")
    apply(bind, "0001_events.sql")
    created = "false" if had_vector else "true"
    bind.exec_driver_sql(
        f"INSERT INTO recsys.meta (key, value) VALUES ('created_vector_extension', '{created}')"
    )


def downgrade() -> None:
    bind = op.get_bind()
    row = bind.exec_driver_sql(
        "SELECT value::text FROM recsys.meta WHERE key = 'created_vector_extension'"
    ).first()
    bind.exec_driver_sql("DROP SCHEMA recsys CASCADE")
    if row is not None and row[0] == "true":
        # Drop the extension only if we created it and nothing else uses it now.
        savepoint = bind.begin_nested()
        try:
            bind.exec_driver_sql("DROP EXTENSION IF EXISTS vector RESTRICT")
            savepoint.commit()
        except Exception:  # noqa: BLE001 - another schema uses vector: leave it installed
            savepoint.rollback()
