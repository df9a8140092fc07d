"""The server, pgvector and migrations checks: can recsys-db reach its database and use it?"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from recsys_db import config, db, embedded, migrate
from recsys_db.doctor.base import (
    CONNECT_TIMEOUT_SECONDS,
    MIGRATE,
    MIN_PGVECTOR,
    MIN_SERVER_VERSION_NUM,
    START_SERVER,
    STATEMENT_TIMEOUT,
    Check,
    Context,
    address,
    doctor_sql,
    first_line,
    psql,
)


def check_server(ctx: Context) -> Check:
    if ctx.url is None and config.database_url_from_env() is None:
        ctx.embedded = True
        if not embedded.status().running:
            return Check("server", "fail",
                         f"the embedded PostgreSQL is not running (data in "
                         f"{embedded.pgdata_dir()}) and {config.DATABASE_URL_ENV} is not set",
                         START_SERVER)
    try:
        ctx.url = ctx.url or (embedded.url() if ctx.embedded else db.database_url())
        where = address(ctx.url)
        ctx.conn = db.connect(ctx.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - a bad URL or an unreachable server
        fix = ("recsys-db db stop && recsys-db db start" if ctx.embedded else
               f"check {config.DATABASE_URL_ENV} (host, port, database, credentials) and that "
               f"its server runs, or unset it and run {START_SERVER}")
        return Check("server", "fail", first_line(exc), fix)
    ctx.conn.execute(doctor_sql()["session"], {"statement_timeout": STATEMENT_TIMEOUT})
    number, version, database = ctx.conn.execute(doctor_sql()["server"]).fetchone()
    if number < MIN_SERVER_VERSION_NUM:
        return Check("server", "fail",
                     f"PostgreSQL {version} at {where}: recsys-db needs 14 or newer",
                     f"upgrade the server to PostgreSQL 14+, or unset "
                     f"{config.DATABASE_URL_ENV} and run {START_SERVER} (PostgreSQL 18)")
    return Check("server", "ok", f"PostgreSQL {version}, database {database} at {where}")


def check_pgvector(ctx: Context) -> Check:
    available, installed, migrated, superuser = ctx.c.execute(doctor_sql()["pgvector"]).fetchone()
    need = ".".join(map(str, MIN_PGVECTOR[:2]))
    if installed is None and available is None:
        return Check("pgvector", "fail", "the vector extension is not available on this server",
                     f"install pgvector >= {need} on the server (package "
                     f"postgresql-<major>-pgvector), or unset {config.DATABASE_URL_ENV} "
                     f"and run {START_SERVER}")
    if installed is None and not migrated and not superuser:
        return Check("pgvector", "fail",
                     f"pgvector {available} is available but not installed in this database, "
                     "and this role is not a superuser: an admin must create it first",
                     f"as an admin: CREATE EXTENSION vector; then {MIGRATE}")
    if installed is None and not migrated:
        return Check("pgvector", "fail",
                     f"pgvector {available} is available but not installed in this database "
                     "(migrating installs it)", MIGRATE)
    if installed is None:
        return Check("pgvector", "fail",
                     f"pgvector ({available} available) is not installed, but schema recsys "
                     "exists: the extension was dropped after migration (DROP EXTENSION ... "
                     "CASCADE also drops the vector columns of recsys.user_states and "
                     "recsys.item_embeddings). Rebuilding the schema drops recsys.events too: "
                     "export them first if they exist nowhere else, reload them and run the "
                     "jobs again afterwards",
                     f"recsys-db migrate --to base && {MIGRATE}")
    if _version(installed) < MIN_PGVECTOR:
        fix = (psql("ALTER EXTENSION vector UPDATE")
               if available and _version(available) >= MIN_PGVECTOR else
               f"install pgvector >= {need} on the server, then "
               + psql("ALTER EXTENSION vector UPDATE"))
        return Check("pgvector", "fail", f"pgvector {installed} is installed; recsys-db needs "
                     f">= {need}", fix)
    note = f" ({available} available)" if available and available != installed else ""
    return Check("pgvector", "ok", f"pgvector {installed}{note}")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def check_migrations(ctx: Context) -> Check:
    sa_url = make_url(ctx.url).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(sa_url, poolclass=sa.pool.NullPool,
                              connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        current = migrate.current_revision(engine)
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(migrate.alembic_config())
    head = script.get_current_head()
    if current == head:
        return Check("migrations", "ok", f"schema recsys at head ({head})")
    if current is None:
        return Check("migrations", "fail",
                     "this database is not migrated (no recsys-db revision recorded)", MIGRATE)
    if current not in {r.revision for r in script.walk_revisions()}:
        return Check("migrations", "fail",
                     f"the database is at revision {current}, which this recsys-db does not "
                     f"know (its head is {head}): a newer recsys-db migrated it",
                     "upgrade recsys-db to the version that migrated this database")
    return Check("migrations", "fail", f"schema recsys at revision {current}; head is {head}",
                 MIGRATE)
