"""Migrations: round trip, no drift between ORM and migrations, intended indexes serve queries."""

from __future__ import annotations

import json

import psycopg

from recsys_db import migrate
from recsys_db.db import get_engine
from recsys_db.ingest import load_events
from recsys_db.synth import generate


def _recsys_objects(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'recsys'").fetchone()[0]


def test_migrate_round_trip_removes_everything_and_nothing_else(db_url, conn):
    conn.execute("CREATE TABLE public.app_table (id int)")  # the application's own object
    engine = get_engine()
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.downgrade(engine, "base")
    assert conn.execute("SELECT to_regnamespace('recsys')").fetchone()[0] is None
    assert conn.execute("SELECT to_regclass('public.recsys_alembic_version')").fetchone()[0] is None
    assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
                        ).fetchone()[0] == 0  # created by recsys-db, so removed with it
    assert conn.execute("SELECT to_regclass('public.app_table')").fetchone()[0] is not None
    migrate.upgrade(engine)
    assert _recsys_objects(conn) > 10
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_downgrade_keeps_vector_extension_it_did_not_create(db_url, conn):
    engine = get_engine()
    migrate.downgrade(engine, "base")
    conn.execute("CREATE EXTENSION vector")
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
                        ).fetchone()[0] == 1


def test_orm_models_match_migrations(db_url):
    diffs = migrate.drift(get_engine())
    assert diffs == [], f"ORM and migrations differ: {diffs}"


def _plan(conn: psycopg.Connection, sql: str) -> str:
    conn.execute("SET enable_seqscan = off")
    return json.dumps(conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()[0])


def test_latest_events_of_a_user_use_the_primary_key(conn, tmp_path):
    path = tmp_path / "synth.csv"
    generate(path, users=500, items=2_000, events=50_000, seed=3)
    load_events(path)
    conn.execute("ANALYZE recsys.events")
    plan = _plan(conn, "SELECT * FROM recsys.events WHERE user_key = 7 ORDER BY ts DESC LIMIT 50")
    assert "events_2017m11_pkey" in plan and "Backward" in plan, plan
    plan = _plan(conn, "SELECT count(*) FROM recsys.events WHERE ts >= '2017-12-03+00'")
    assert "ts_idx" in plan, plan
