"""Baseline: the current schema on an empty database (sql/schema.sql, sql/functions/, grants).

Revision 0007 is the oldest release a database can be upgraded from: a database that release
left at 0007 already has its objects and goes on with 0008. On an empty database this revision
installs the current schema in one step, and the later revisions then only re-apply files whose
content is already there (tests/test_schema_equality.py checks both ways end in the same
catalogue). Revisions 0001-0006 were folded into it.

Revision ID: 0007
Revises:
"""

import os

from alembic import op

from recsys_db.sqlfiles import install_schema

revision = "0007"
down_revision = None
branch_labels = None
depends_on = None

APP_ROLE_ENV = "RECSYS_APP_ROLE"


def upgrade() -> None:
    bind = op.get_bind()
    had_vector = bind.exec_driver_sql(
        "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
    ).first()
    bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    install_schema(bind, os.environ.get(APP_ROLE_ENV, "recsys_app"))
    bind.exec_driver_sql(
        "INSERT INTO recsys.meta (key, value)"
        " VALUES ('created_vector_extension', %(created)s::jsonb)",
        {"created": "false" if had_vector else "true"})


def downgrade() -> None:
    """Remove everything of recsys-db: schema recsys, the application role when no other
    database still uses it and this role may drop it, and pgvector when recsys-db created it
    and nothing else uses it."""
    bind = op.get_bind()
    row = bind.exec_driver_sql(
        "SELECT value::text FROM recsys.meta WHERE key = 'created_vector_extension'"
    ).first()
    role = bind.exec_driver_sql(
        "SELECT value #>> '{}' FROM recsys.meta WHERE key = 'app_role'").first()
    bind.exec_driver_sql("DROP SCHEMA recsys CASCADE")
    if role is not None:
        _drop_role(bind, role[0])
    if row is not None and row[0] == "true":
        # Drop the extension only if we created it and nothing else uses it now.
        savepoint = bind.begin_nested()
        try:
            bind.exec_driver_sql("DROP EXTENSION IF EXISTS vector RESTRICT")
            savepoint.commit()
        except Exception:  # noqa: BLE001 - another schema uses vector: leave it installed
            savepoint.rollback()


def _drop_role(bind, role: str) -> None:  # noqa: ANN001
    """The role is cluster-wide: it stays while another database still grants it privileges,
    or when an administrator made it (the owner has no CREATEROLE/ADMIN on it)."""
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("SELECT set_config('recsys.app_role', %(role)s, true)",
                             {"role": role})
        bind.connection.driver_connection.execute(  # no parameters: % stays literal
            "DO $do$ BEGIN EXECUTE format('DROP ROLE %I', current_setting('recsys.app_role'));"
            " END $do$")
        savepoint.commit()
    except Exception:  # noqa: BLE001 - kept, as above
        savepoint.rollback()
