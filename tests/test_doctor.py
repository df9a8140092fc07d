"""recsys-db doctor: a healthy setup, then each way of breaking it, against a real server.

One database is trained once per module (interest, CF, ranker on a small synthetic log); each
test breaks its own clone of it (CREATE DATABASE ... TEMPLATE), so the tests are independent.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database

from recsys_db import db, doctor, embedded, migrate, synth
from recsys_db.doctor import Check, run_checks, verdict

_counter = itertools.count()


@pytest.fixture(scope="module")
def trained(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:
    """Name of a database with events and an active interest, CF and ranker version."""
    from recsys_db.cf import train_cf
    from recsys_db.ingest import load_events
    from recsys_db.interest.train import TrainConfig
    from recsys_db.interest.trainer import train_interest
    from recsys_db.ranker.train import RankerConfig, train_ranker

    name = f"recsys_doctor_{os.getpid()}"
    url = create_database(server_url, name, template_db)
    path = tmp_path_factory.mktemp("doctor") / "synth.csv"
    synth.generate(path, users=200, items=600, events=12_000, seed=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATABASE_URL", url)
        load_events(path)
        with psycopg.connect(url) as conn:
            train_interest(conn, TrainConfig(dim=16, epochs=2, max_len=20))
            train_cf(conn)
            train_ranker(conn, RankerConfig(num_trees=20))
    db.dispose_engines()  # a template must have no other sessions
    yield name
    drop_database(server_url, name)


@pytest.fixture
def healthy(server_url: str, trained: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clone of the trained database for this test; RECSYS_DATABASE_URL points at it."""
    name = f"recsys_doctor_{os.getpid()}_{next(_counter)}"
    url = create_database(server_url, name, trained)
    monkeypatch.setenv("RECSYS_DATABASE_URL", url)
    yield url
    drop_database(server_url, name)


def _checks(url: str | None = None) -> dict[str, Check]:
    checks = run_checks(url)
    assert [c.name for c in checks] == list(doctor.CHECK_NAMES)
    for c in checks:
        assert c.status in ("ok", "warn", "fail")
        if c.status != "ok" and not c.detail.startswith("skipped:"):
            assert c.fix, c  # every problem says what to run
    return {c.name: c for c in checks}


def _execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _psql_statement(fix: str) -> str:
    """The SQL inside a `psql "$(recsys-db db url)" -c "..."` fix."""
    found = re.search(r'-c "([^"]+)"', fix)
    assert found, fix
    return found.group(1)


def test_verdict() -> None:
    ok, warn, fail = (Check("x", s, "d") for s in ("ok", "warn", "fail"))  # type: ignore[arg-type]
    assert verdict([]) == "healthy"
    assert verdict([ok, ok]) == "healthy"
    assert verdict([ok, warn]) == "degraded"
    assert verdict([warn, fail, ok]) == "broken"


def test_healthy_setup(healthy: str) -> None:
    checks = _checks()  # RECSYS_DATABASE_URL
    assert {name: c.status for name, c in checks.items()} == dict.fromkeys(doctor.CHECK_NAMES,
                                                                           "ok")
    assert verdict(checks.values()) == "healthy"
    assert all(c.fix is None for c in checks.values())
    assert re.search(r"interest v\d+, cf v\d+, ranker v\d+", checks["models"].detail)
    assert "10 rows" in checks["serving"].detail
    assert _checks(healthy)["models"].detail == checks["models"].detail  # explicit url


def test_unreachable_server_reports_and_skips(tmp_path: Path) -> None:
    for url in ("postgresql://postgres@127.0.0.1:1/recsys",
                f"postgresql://postgres@/recsys?host={tmp_path / 'no-such-dir'}"):
        checks = _checks(url)
        assert checks["server"].status == "fail"
        assert "RECSYS_DATABASE_URL" in checks["server"].fix
        for name in doctor.CHECK_NAMES[1:]:
            assert checks[name] == Check(name, "fail", "skipped: server failed")


def test_embedded_server_not_running_is_not_started(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSYS_DATABASE_URL", raising=False)
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))
    checks = _checks()
    assert checks["server"].status == "fail"
    assert checks["server"].fix == "recsys-db db start"
    assert "not running" in checks["server"].detail
    assert not embedded.status().running
    assert not (tmp_path / "pgdata").exists()


@pytest.mark.skipif(bool(os.environ.get("RECSYS_DATABASE_URL")),
                    reason="the tests use an external server, not the embedded one")
def test_running_embedded_server_is_used_by_default(server_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSYS_DATABASE_URL", raising=False)  # server_url started it
    check = _checks()["server"]
    assert check.status == "ok"
    assert f"database {embedded.DATABASE_NAME} at " in check.detail


def test_dropped_pgvector(healthy: str) -> None:
    _execute(healthy, "DROP EXTENSION vector CASCADE")
    checks = _checks(healthy)
    assert checks["pgvector"].status == "fail"
    assert "not installed" in checks["pgvector"].detail
    assert checks["pgvector"].fix == "recsys-db migrate --to base && recsys-db migrate"
    assert checks["hnsw"].detail == "skipped: pgvector failed"
    assert checks["serving"].detail == "skipped: pgvector failed"
    assert checks["migrations"].status == "ok"
    assert verdict(checks.values()) == "broken"


def test_models_missing(healthy: str) -> None:
    _execute(healthy, "UPDATE recsys.model_versions SET active = false WHERE kind = 'ranker'")
    checks = _checks(healthy)
    assert checks["models"].status == "warn"
    assert checks["models"].fix == "recsys-db jobs run train-ranker"
    assert "fixed blend" in checks["models"].detail
    # Deactivated behind the registry's back: the serving functions still use the old ranker.
    assert checks["serving"].status == "warn"
    assert "ranker" in checks["serving"].detail
    assert "install_serving" in checks["serving"].fix
    _execute(healthy, _psql_statement(checks["serving"].fix))
    assert _checks(healthy)["serving"].status == "ok"

    # Without an interest version recommend() still serves CF, recent and trending items.
    _execute(healthy, "UPDATE recsys.model_versions SET active = false WHERE kind = 'interest'",
             "SELECT recsys.install_serving()")
    checks = _checks(healthy)
    assert checks["models"].status == "warn"
    assert checks["models"].fix == ("recsys-db jobs run train-interest && "
                                    "recsys-db jobs run train-ranker")
    assert checks["hnsw"].status == checks["worker-lag"].status == "warn"
    assert checks["hnsw"].detail.startswith("skipped: no active interest version")
    assert checks["serving"].status == "ok"
    assert verdict(checks.values()) == "degraded"

    # Without interest and CF it can only return the user's own recent items.
    _execute(healthy, "UPDATE recsys.model_versions SET active = false",
             "SELECT recsys.install_serving()")
    checks = _checks(healthy)
    assert checks["models"].status == "fail"
    assert checks["models"].fix == ("recsys-db jobs run train-interest && recsys-db jobs run "
                                    "train-cf && recsys-db jobs run train-ranker")
    assert checks["hnsw"].detail == checks["worker-lag"].detail == "skipped: models failed"
    assert verdict(checks.values()) == "broken"


def test_fresh_database_needs_events_first(db_url: str) -> None:
    checks = _checks(db_url)
    assert checks["migrations"].status == "ok"
    assert checks["models"].status == "fail"
    assert checks["models"].fix.startswith("recsys-db ingest ")
    assert checks["serving"].status == "warn" and "no users" in checks["serving"].detail
    assert checks["jobs"].status == "ok"


def test_broken_interest_version_and_missing_ranker_function(healthy: str) -> None:
    with psycopg.connect(healthy, autocommit=True) as conn:
        interest, ranker = (conn.execute(
            "SELECT version_id FROM recsys.model_versions WHERE kind = %s AND active", (k,)
        ).fetchone()[0] for k in ("interest", "ranker"))
        conn.execute("DELETE FROM recsys.model_blobs WHERE version_id = %s", (interest,))
        conn.execute(f"DROP FUNCTION recsys.ranker_score_v{ranker}(double precision[])")
    checks = _checks(healthy)
    assert checks["models"].status == "fail"
    assert "no weights" in checks["models"].detail
    assert f"ranker_score_v{ranker}" in checks["models"].detail
    assert checks["models"].fix == ("recsys-db jobs run train-interest && "
                                    "recsys-db jobs run train-ranker")
    # recommend() calls the dropped function: regenerating the serving functions repairs it.
    assert checks["serving"].status == "fail"
    assert "install_serving" in checks["serving"].fix
    _execute(healthy, _psql_statement(checks["serving"].fix))
    assert _checks(healthy)["serving"].status == "ok"


def test_missing_hnsw_index_and_its_fix(healthy: str) -> None:
    with psycopg.connect(healthy, autocommit=True) as conn:
        version = conn.execute("SELECT version_id FROM recsys.model_versions "
                               "WHERE kind = 'interest' AND active").fetchone()[0]
        conn.execute(f"DROP INDEX recsys.item_embeddings_v{version}_hnsw")
    check = _checks(healthy)["hnsw"]
    assert check.status == "fail"
    assert f"no HNSW index on recsys.item_embeddings_v{version}" in check.detail
    _execute(healthy, _psql_statement(check.fix))
    check = _checks(healthy)["hnsw"]
    assert check.status == "ok" and "valid and ready" in check.detail


def test_unmigrated_and_outdated_database(server_url: str) -> None:
    name = f"recsys_doctor_{os.getpid()}_empty"
    url = create_database(server_url, name)
    try:
        checks = _checks(url)
        assert checks["migrations"].status == "fail"
        assert checks["migrations"].fix == "recsys-db migrate"
        assert checks["pgvector"].status == "fail"  # not installed yet: migrating installs it
        assert checks["pgvector"].fix == "recsys-db migrate"
        for name_ in ("models", "jobs", "worker-lag"):
            assert checks[name_].detail == "skipped: migrations failed"
        engine = sa.create_engine(url.replace("postgresql:", "postgresql+psycopg:"),
                                  poolclass=sa.pool.NullPool)
        migrate.upgrade(engine, "0007")
        engine.dispose()
        checks = _checks(url)
        assert checks["pgvector"].status == "ok"
        assert checks["migrations"].status == "fail"
        assert checks["migrations"].detail == (f"schema recsys at revision 0007; head is "
                                               f"{migrate.head_revision()}")
        assert checks["migrations"].fix == "recsys-db migrate"
    finally:
        drop_database(server_url, name)


def test_database_migrated_by_a_newer_recsys_db(db_url: str) -> None:
    _execute(db_url, "UPDATE public.recsys_alembic_version SET version_num = '9999_future'")
    check = _checks(db_url)["migrations"]
    assert check.status == "fail" and "9999_future" in check.detail
    assert check.fix.startswith("upgrade recsys-db")


def test_worker_lag(healthy: str) -> None:
    from recsys_db.interest.live import refresh_states

    track = "SELECT recsys.track_event(%s, 'doctor-item', 'pv', %s)"
    with psycopg.connect(healthy, autocommit=True) as conn:
        (a, a_key, a_last), (b, b_key, _), (c, c_key, c_last) = conn.execute(
            "SELECT u.user_id, u.user_key, s.last_event_ts FROM recsys.user_states s "
            "JOIN recsys.users u USING (user_key) ORDER BY u.user_key LIMIT 3").fetchall()
        # An event the worker has not seen yet, right after the state was written: no lag.
        conn.execute(track, (a, a_last + timedelta(minutes=1)))
        check = _checks(healthy)["worker-lag"]
        assert check.status == "ok"
        assert "1 user(s)" in check.detail and "keeping up" in check.detail
        # States written 10 minutes ago: an event from 5 s ago has waited 5 s at most...
        conn.execute("UPDATE recsys.user_states SET updated_at = now() - interval '10 min' "
                     "WHERE user_key = ANY(%s)", ([b_key, c_key],))
        conn.execute(track, (b, datetime.now(UTC) - timedelta(seconds=5)))
        check = _checks(healthy)["worker-lag"]
        assert check.status == "ok" and "2 user(s)" in check.detail
        # ... but one that happened before the state was written has waited since then.
        conn.execute(track, (c, c_last + timedelta(minutes=2)))
        check = _checks(healthy)["worker-lag"]
        assert check.status == "warn"
        assert "3 user(s)" in check.detail
        assert re.search(r"waited up to (9|10|11) min", check.detail), check.detail
        assert check.fix == "recsys-db worker" and "refresh-states" in check.detail
        conn.execute(track, ("doctor-new-user", datetime.now(UTC)))  # no state yet
        assert "4 user(s)" in _checks(healthy)["worker-lag"].detail
    with psycopg.connect(healthy) as conn:
        refresh_states(conn)
    check = _checks(healthy)["worker-lag"]
    assert check.status == "ok" and "cover all events" in check.detail


def test_jobs(healthy: str, server_url: str) -> None:
    insert = ("INSERT INTO recsys.job_runs (job, status, started_at, finished_at, error, host, "
              "pid) VALUES (%s, %s, now() - %s::interval, now() - %s::interval, %s, 'h1', 42) "
              "RETURNING run_id")
    with psycopg.connect(healthy, autocommit=True) as conn:
        conn.execute(insert, ("train-cf", "succeeded", "2 h", "2 h", None))
        assert _checks(healthy)["jobs"].status == "ok"
        conn.execute(insert, ("train-cf", "failed", "1 h", "1 h",
                              "ValueError: no events\nTraceback (most recent call last): ..."))
        check = _checks(healthy)["jobs"]
        assert check.status == "warn"
        assert "the last train-cf run" in check.detail and "ValueError: no events" in check.detail
        assert "Traceback" not in check.detail
        assert check.fix == "recsys-db jobs run train-cf"
        conn.execute(insert, ("train-cf", "succeeded", "1 min", "0 s", None))
        assert _checks(healthy)["jobs"].status == "ok"

        # A run marked running whose lock nobody holds has died.
        run = conn.execute(insert, ("train-interest", "running", "5 min", None, None)
                           ).fetchone()[0]
        check = _checks(healthy)["jobs"]
        assert check.status == "warn" and f"run {run} of train-interest" in check.detail
        assert "died" in check.detail
        assert check.fix == "recsys-db jobs run train-interest"
        # Held by a live session (another connection, as a job runner would): alive; after
        # 6 hours it is reported as long-running.
        with psycopg.connect(healthy, autocommit=True) as runner:
            runner.execute("SELECT pg_advisory_lock(hashtext('recsys-job:train-interest'))")
            check = _checks(healthy)["jobs"]
            assert check.status == "ok" and "1 running" in check.detail
            conn.execute("UPDATE recsys.job_runs SET started_at = now() - interval '7 h' "
                         "WHERE run_id = %s", (run,))
            check = _checks(healthy)["jobs"]
            assert check.status == "warn" and "running for 7.0 h" in check.detail
            assert "pid 42 on h1" in check.fix


def test_cli_exit_status_follows_the_verdict(healthy: str) -> None:
    import json

    from typer.testing import CliRunner

    from recsys_db.cli import app

    runner = CliRunner()
    good = runner.invoke(app, ["doctor", "--json"])
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["verdict"] == "healthy"
    _execute(healthy, "UPDATE recsys.model_versions SET active = false")
    bad = runner.invoke(app, ["doctor"])
    assert bad.exit_code == 1
    assert "verdict: broken" in bad.stdout and "recsys-db jobs run train-interest" in bad.stdout
