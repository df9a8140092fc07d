"""One schema, three ways to it: the canonical files (sql/schema.sql, sql/functions/,
sql/grants.sql) on an empty database, the migration chain from base, and a database that
release 0007 left (tests/fixtures/release_0007.dump) upgraded by the chain. All three must give
the same `pg_dump --schema-only` of schema recsys: tables, columns, functions with their bodies
and settings, triggers, indexes, grants.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator

import psycopg
import pytest
from conftest import create_database, drop_database
from release import RELEASE, engine_for, restore_release, schema_dump

from recsys_db import migrate, sqlfiles


@pytest.fixture
def databases(server_url: str) -> Iterator[list[str]]:
    names = [f"recsys_schema_{way}_{os.getpid()}" for way in ("files", "chain", "release")]
    urls = [create_database(server_url, name) for name in names]
    try:
        yield urls
    finally:
        for name in names:
            drop_database(server_url, name)


def _from_files(url: str) -> None:
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            sqlfiles.apply(conn, "load_vector.sql")
            conn.exec_driver_sql("CREATE EXTENSION vector")
            sqlfiles.apply(conn, "load_vector.sql")
            sqlfiles.install_schema(conn, "recsys_app")
    finally:
        engine.dispose()


def _diff(a: str, b: str, names: tuple[str, str]) -> str:
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), *names, n=2))


def test_files_chain_and_upgraded_release_have_one_schema(databases: list[str]) -> None:
    files, chain, release = databases
    _from_files(files)
    engine = engine_for(chain)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    restore_release(release)
    assert "p_migrate" not in schema_dump(release)  # really the older schema
    engine = engine_for(release)
    try:
        assert migrate.current_revision(engine) == RELEASE
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
    canonical = schema_dump(files)
    assert "CREATE FUNCTION recsys.recommend(" in canonical
    assert "CREATE TRIGGER events_notify" in canonical
    assert "GRANT ALL ON FUNCTION recsys.recommend(" in canonical.replace("EXECUTE", "ALL")
    for url, name in ((chain, "chain from base"), (release, f"release {RELEASE} upgraded")):
        dump = schema_dump(url)
        assert dump == canonical, _diff(canonical, dump, ("files", name))


def test_downgrade_to_base_and_upgrade_again(db_url: str) -> None:
    """Head -> base -> head ends with the same schema (the baseline's downgrade removes it all)."""
    before = schema_dump(db_url)
    engine = engine_for(db_url)
    try:
        migrate.downgrade(engine, "base")
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT to_regnamespace('recsys')").fetchone()[0] is None
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert schema_dump(db_url) == before


def test_a_database_older_than_the_baseline_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE public.recsys_alembic_version SET version_num = '0005'")
    engine = engine_for(db_url)
    try:
        with pytest.raises(migrate.UnsupportedRevision, match="older than 0007"):
            migrate.upgrade(engine)
    finally:
        engine.dispose()

