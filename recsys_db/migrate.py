"""Alembic, driven from Python: upgrade to head, downgrade to base, current revision, drift.

The chain starts at revision 0007 (the baseline: on an empty database it installs the current
schema from sql/schema.sql and sql/functions/); a database at an older revision must first be
upgraded to 0007 by a recsys-db release that still has revisions 0001-0006.
"""

from __future__ import annotations

import re
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from recsys_db.config import MIGRATIONS_DIR

VERSION_TABLE = "recsys_alembic_version"


def alembic_config(connection: Any | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


BASELINE = "0007"


class UnsupportedRevision(RuntimeError):
    """The database is at a revision older than the baseline (or unknown to this release)."""


def upgrade(engine: Engine, target: str = "head") -> None:
    current = current_revision(engine)
    scripts = ScriptDirectory.from_config(alembic_config())
    if current is not None and current not in {r.revision for r in scripts.walk_revisions()}:
        older = current < BASELINE
        raise UnsupportedRevision(
            f"schema recsys is at revision {current}, "
            + (f"older than {BASELINE}, the oldest this release upgrades: upgrade it to "
               f"{BASELINE} with an earlier recsys-db release first" if older
               else "which this release does not know: upgrade recsys-db"))
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), target)


def stamp(engine: Engine, revision: str) -> None:
    """Record `revision` as the database's revision without running anything."""
    with engine.begin() as conn:
        command.stamp(alembic_config(conn), revision)


def downgrade(engine: Engine, target: str = "base") -> None:
    """Downgrade; at base also drop Alembic's version table so nothing of recsys-db remains."""
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), target)
        if target == "base":
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS public.{VERSION_TABLE}")


def drift(engine: Engine) -> list[Any]:
    """Differences between the ORM models and the migrated database (empty when in sync)."""
    from recsys_db.orm import Base

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return compare_metadata(ctx, Base.metadata)


_PARTITION = re.compile(r"^(events_(default|\d{4}m\d{2})|item_embeddings_v\d+)$")


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """Alembic hook: compare schema `recsys` only, and not the partitions of its tables."""
    if type_ == "schema":
        return name == "recsys"
    if type_ == "table":
        return parent_names.get("schema_name") == "recsys" and not _PARTITION.match(name or "")
    return True
