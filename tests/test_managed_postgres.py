"""recsys-db as managed PostgreSQL runs it (RDS, Cloud SQL, Azure, Supabase, Neon).

The database belongs to a role that is not a superuser (NOSUPERUSER CREATEROLE LOGIN), and the
superuser - the platform's admin - created the vector extension in it beforehand: the one thing
recsys-db cannot do itself. Every command then runs as that owner, through the real CLI.
Also here: concurrent first writes into new months (separate connections, one per thread).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import drop_database
from psycopg import sql
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from recsys_db import db, migrate, synth
from recsys_db.cli import app
from recsys_db.doctor import run_checks

PID = os.getpid()
OWNER = f"recsys_owner_{PID}"  # the database owner, as a platform creates it
APP_ROLE = f"recsys_app_{PID}"  # created by the migration (CREATEROLE), dropped at the end
SHOP = f"recsys_shop_{PID}"  # the application's login role, granted APP_ROLE
STRANGER = f"recsys_stranger_{PID}"  # a login role with no privileges of its own
PASSWORD = secrets.token_hex(12)


def _url(server_url: str, database: str, user: str) -> str:
    return make_url(server_url).set(database=database, username=user, password=PASSWORD
                                    ).render_as_string(hide_password=False)


def _managed_database(server_url: str, name: str) -> str:
    """A database owned by OWNER with pgvector created by the superuser; returns OWNER's URL."""
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                               sql.Identifier(OWNER)))
    with psycopg.connect(make_url(server_url).set(database=name).render_as_string(
            hide_password=False), autocommit=True) as c:
        c.execute("CREATE EXTENSION vector")
    return _url(server_url, name, OWNER)


def _drop_roles(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as c:
        for role in (STRANGER, SHOP, APP_ROLE, OWNER):
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def managed_db(server_url: str) -> Iterator[str]:
    """OWNER's URL of its database (pgvector created by the superuser)."""
    name = f"recsys_managed_{PID}"
    _drop_roles(server_url)
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} NOSUPERUSER CREATEROLE LOGIN PASSWORD {}").format(
            sql.Identifier(OWNER), sql.Literal(PASSWORD)))
    url = _managed_database(server_url, name)
    with psycopg.connect(url) as c:
        assert not c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                             ).fetchone()[0]
    yield url
    drop_database(server_url, name)
    _drop_roles(server_url)


@pytest.fixture
def managed(managed_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """RECSYS_DATABASE_URL and RECSYS_APP_ROLE point at the owner's database and app role."""
    monkeypatch.setenv("RECSYS_DATABASE_URL", managed_db)
    monkeypatch.setenv("RECSYS_APP_ROLE", APP_ROLE)
    return managed_db


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"recsys-db {' '.join(args)}:\n{result.output}"
    return result.output


def _catalogue(url: str) -> dict[str, list]:
    """Functions of schema recsys: signature, body, settings, privileges."""
    with psycopg.connect(url) as c:
        return {"functions": c.execute(
            "SELECT p.oid::regprocedure::text, md5(p.prosrc), p.proconfig, p.proacl::text[] "
            "FROM pg_proc p WHERE p.pronamespace = 'recsys'::regnamespace ORDER BY 1"
        ).fetchall()}


def test_upgrade_and_downgrade_as_owner(managed: str, server_url: str) -> None:
    """base -> head, head -> 0007 -> head as the owner; head -> 0007 equals base -> 0007, and no
    function keeps a pgvector setting in a SET clause (the owner could not restore it)."""
    cli("migrate")
    head = _catalogue(managed)
    assert not [f for f in head["functions"] if "hnsw" in str(f[2])]
    cli("migrate", "--to", "0007")
    other = f"recsys_managed_0007_{PID}"
    fresh = _managed_database(server_url, other)
    try:
        engine = db.get_engine(fresh.replace("postgresql:", "postgresql+psycopg:"))
        migrate.upgrade(engine, "0007")
        assert _catalogue(managed) == _catalogue(fresh)
    finally:
        drop_database(server_url, other)
    assert "migrated 0007 -> " in cli("migrate")
    assert _catalogue(managed) == head


def test_every_command_runs_as_owner(managed: str, tmp_path: Path) -> None:
    cli("migrate")
    path = tmp_path / "synth.csv"
    synth.generate(path, users=100, items=300, events=5_000, seed=1)
    assert "5,000 events loaded" in cli("ingest", str(path), "--format", "taobao")
    cli("jobs", "run", "train-interest", "--epochs", "1", "--dim", "8")
    cli("jobs", "run", "train-cf")
    settings = tmp_path / "recsys.toml"
    settings.write_text("[jobs.train-ranker]\nnum_trees = 10\ntrain_windows = 2\n")
    cli("jobs", "run", "train-ranker", "--config", str(settings))
    cli("jobs", "run", "refresh-transitions")

    # The application: a login role granted the app role the migration created.
    with psycopg.connect(managed, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(SHOP),
                                                                    sql.Literal(PASSWORD)))
        c.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE),
                                                   sql.Identifier(SHOP)))
        item = c.execute("SELECT i.item_id FROM recsys.items i ORDER BY i.item_key LIMIT 1"
                         ).fetchone()[0]
        # The serving function raises hnsw.ef_search itself (no SET clause): even from a
        # session that lowered it, the vector source gets its 100 candidates (not 10).
        c.execute("SET hnsw.ef_search = 10")
        assert c.execute(
            "SELECT count(*) FILTER (WHERE 'vector' = ANY(sources)) FROM recsys.serving_candidates("
            "1, 'infinity', (SELECT version_id FROM recsys.model_versions WHERE kind = 'interest'"
            " AND active), (SELECT version_id FROM recsys.model_versions WHERE kind = 'cf' AND "
            "active), NULL, 100)").fetchone()[0] >= 100
    shop = _url(managed, make_url(managed).database, SHOP)
    with psycopg.connect(shop, autocommit=True) as c:
        assert c.execute("SELECT recsys.track_event('1', 'new-item', 'cart', "
                         "'2017-12-03 23:00+00')").fetchone()[0] is not None
        # a month with no partition: created under the owner's rights (SECURITY DEFINER)
        assert c.execute("SELECT recsys.track_event('shopper', 'new-item', 'pv', "
                         "'2031-05-01 10:00+00')").fetchone()[0] is not None
        assert c.execute("SELECT count(*) FROM recsys.recommend('1', 10)").fetchone()[0] == 10
        # cold start: trending items (0 rows before the fix, silently)
        assert c.execute("SELECT count(*) FROM recsys.recommend('nobody', 10)").fetchone()[0] == 10
        assert c.execute("SELECT count(*) FROM recsys.similar_items(%s, 5)", (item,)
                         ).fetchone()[0] == 5
    cli("worker", "--seconds", "1", "--poll", "0.2")
    cli("jobs", "run", "refresh-states")

    cli("jobs", "run", "train-cf")
    cli("jobs", "run", "train-cf")
    assert "rolled back" in cli("models", "rollback", "cf")
    assert re.search(r"dropped [1-9]\d* versions", cli("models", "gc", "--keep", "1"))
    checks = {c.name: c for c in run_checks(managed)}
    assert checks["privileges"].status == "ok", checks["privileges"]
    assert {name for name, c in checks.items() if c.status == "fail"} == set(), checks
    cli("report", "--out", str(tmp_path / "report.html"))
    cli("migrate", "--to", "base")
    with psycopg.connect(managed) as c:
        assert c.execute("SELECT to_regnamespace('recsys')").fetchone()[0] is None
        assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
                         ).fetchone()[0] == 1  # the admin's: kept


def test_doctor_names_missing_privileges(managed: str, server_url: str) -> None:
    """A role that neither owns recsys-db's objects nor may stage rows in pg_temp."""
    cli("migrate")
    database = make_url(managed).database
    with psycopg.connect(managed, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(STRANGER),
                                                                    sql.Literal(PASSWORD)))
        c.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(database)))
    try:
        check = {c.name: c for c in run_checks(_url(managed, database, STRANGER))}["privileges"]
    finally:
        with psycopg.connect(managed, autocommit=True) as c:
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(STRANGER)))
    assert check.status == "fail"
    assert f"role {STRANGER} (not a superuser) lacks: TEMPORARY on the database" in check.detail
    assert "ownership of" in check.detail and "schema recsys, table recsys." in check.detail
    assert f"GRANT TEMPORARY ON DATABASE {database} TO {STRANGER}" in check.fix


def test_concurrent_first_writes_into_new_months(db_url: str) -> None:
    """8 connections write their first events into each of 12 months with no partition yet, at
    once (a barrier per month): no call fails, every event is stored in its month's partition."""
    clients, months = 8, [f"2036-{m:02d}-15 12:00:00+00" for m in range(1, 13)]
    barrier = threading.Barrier(clients)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                for m, ts in enumerate(months):
                    barrier.wait(timeout=60)
                    c.execute("SELECT recsys.track_event(%s, %s, 'pv', %s::timestamptz)",
                              (f"user-{i}", f"item-{m}", ts))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(db_url) as c:
        stored = c.execute("SELECT tableoid::regclass::text, count(*) FROM recsys.events "
                           "WHERE ts >= '2036-01-01+00' GROUP BY 1 ORDER BY 1").fetchall()
    assert stored == [(f"recsys.events_2036m{m:02d}", clients) for m in range(1, 13)]


def test_owner_without_createrole_uses_the_app_role_an_admin_made(server_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """No CREATEROLE: doctor names it until an admin creates the app role; then migrate and
    migrate --to base work (the admin's role is kept)."""
    owner, app_role, name = f"recsys_plain_{PID}", f"recsys_app_plain_{PID}", f"recsys_plain_{PID}"
    with psycopg.connect(server_url, autocommit=True) as c:
        for role in (app_role, owner):
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        c.execute(sql.SQL("CREATE ROLE {} NOSUPERUSER LOGIN PASSWORD {}").format(
            sql.Identifier(owner), sql.Literal(PASSWORD)))
        c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                               sql.Identifier(owner)))
    url = _url(server_url, name, owner)
    monkeypatch.setenv("RECSYS_DATABASE_URL", url)
    monkeypatch.setenv("RECSYS_APP_ROLE", app_role)
    try:
        checks = {c.name: c for c in run_checks(url)}
        assert "an admin must create it first" in checks["pgvector"].detail
        assert checks["pgvector"].fix == "as an admin: CREATE EXTENSION vector; then " \
            "recsys-db migrate"
        assert checks["privileges"].status == "fail"
        assert "extension vector" in checks["privileges"].detail
        assert f"CREATEROLE (migrate creates the NOLOGIN role {app_role})" in \
            checks["privileges"].detail
        with psycopg.connect(make_url(server_url).set(database=name).render_as_string(
                hide_password=False), autocommit=True) as c:
            c.execute("CREATE EXTENSION vector")
            c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(app_role)))
        assert {c.name: c for c in run_checks(url)}["privileges"].status == "ok"
        cli("migrate")
        cli("migrate", "--to", "base")
        with psycopg.connect(url) as c:
            assert c.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                             (app_role,)).fetchone()[0] == 1
    finally:
        drop_database(server_url, name)
        with psycopg.connect(server_url, autocommit=True) as c:
            for role in (app_role, owner):
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
