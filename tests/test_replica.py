"""A hot standby of the test server (recsys_db/replica.py, `recsys-db replica`) serves the read
functions as the application role, gets an interest shift tracked on the primary, and refuses
writes with a clear error instead of hanging.

The standby is a pg_basebackup clone of the session's embedded server, started once for the
module; each test's database reaches it by streaming replication (CREATE DATABASE is WAL-logged).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import _EXTERNAL, drop_database
from serving_fixtures import trained_database
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

pytestmark = pytest.mark.skipif(
    bool(_EXTERNAL), reason="RECSYS_DATABASE_URL is set: `recsys-db replica` clones the embedded "
                            "server only")

READS = {  # the five functions an application may send to a standby
    "recommend": "SELECT * FROM recsys.recommend(%(user)s, 10)",
    "similar_items": "SELECT * FROM recsys.similar_items(%(item)s, 10)",
    "recommend_for_session": "SELECT * FROM recsys.recommend_for_session(ARRAY[%(item)s], 10)",
    "interest_profile": "SELECT * FROM recsys.interest_profile(%(user)s)",
    "interest_drift": "SELECT drift, gaining, losing, p_migrate"
                      " FROM recsys.interest_drift(%(user)s)",
}


@pytest.fixture(scope="module")
def standby(server_url: str) -> Iterator[None]:
    from recsys_db import replica

    try:
        replica._pg_basebackup()
    except Exception as exc:  # noqa: BLE001 - the one reason to skip
        pytest.skip(f"pg_basebackup is missing: {exc}")
    replica.start()
    yield
    replica.stop(remove=True)


@pytest.fixture(scope="module")
def served(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """One database for the module: a small synthetic log, an interest model (dim 8, 1 epoch)
    and a CF version. The tests run in file order; only the last two write to it."""
    url, name = trained_database(server_url, template_db, tmp_path_factory, "recsys_replica",
                                 users=100, events=4_000, seed=4)
    yield url
    drop_database(server_url, name)


def _on_standby(db_url: str) -> psycopg.Connection:
    from recsys_db import replica

    conn = psycopg.connect(replica.standby_url(make_url(db_url).database), autocommit=True)
    conn.execute("SET statement_timeout = '20s'")
    return conn


def _caught_up(primary: psycopg.Connection, standby: psycopg.Connection) -> None:
    from recsys_db import replica

    replica.wait_for_replay(standby, replica.current_lsn(primary), timeout=30)


def _reads(conn: psycopg.Connection, args: dict[str, str]) -> dict[str, list[tuple]]:
    conn.execute("SET ROLE recsys_app")
    try:
        return {name: conn.execute(sql, args).fetchall() for name, sql in READS.items()}
    finally:
        conn.execute("RESET ROLE")


def _recommend(conn: psycopg.Connection, user: str) -> list[tuple]:
    return conn.execute(READS["recommend"], {"user": user}).fetchall()


def _busy_user(conn: psycopg.Connection) -> tuple[str, str]:
    return conn.execute(
        "SELECT u.user_id, i.item_id FROM recsys.events e JOIN recsys.users u USING (user_key)"
        " JOIN recsys.items i USING (item_key) GROUP BY u.user_id, i.item_id"
        " ORDER BY count(*) OVER (PARTITION BY u.user_id) DESC, u.user_id, i.item_id LIMIT 1"
    ).fetchone()


def test_read_functions_serve_from_the_standby_as_the_app_role(served: str, standby: None
                                                                ) -> None:
    with psycopg.connect(served, autocommit=True) as primary, _on_standby(served) as sb:
        _caught_up(primary, sb)
        assert sb.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        user, item = _busy_user(primary)
        args = {"user": user, "item": item}
        on_standby = _reads(sb, args)
        assert len(on_standby["recommend"]) == 10
        assert on_standby["similar_items"] and on_standby["recommend_for_session"]
        assert on_standby["interest_profile"] and on_standby["interest_drift"][0][3] is not None
        assert on_standby == _reads(primary, args)  # the same answers as the primary's
        not_replicated = primary.execute(  # UNLOGGED or temporary relations never reach it
            "SELECT relname FROM pg_class WHERE relnamespace = 'recsys'::regnamespace"
            " AND relpersistence <> 'p'").fetchall()
        assert not_replicated == []
        assert "ranker_score_v" in sb.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = 'serving_score'").fetchone()[0]
        # the other branches: options, cold start, empty session, embedding neighbours
        category = primary.execute("SELECT category_id FROM recsys.categories LIMIT 1"
                                   ).fetchone()[0]
        lonely = primary.execute(  # an item without CF neighbours: similar_items uses vectors
            "SELECT i.item_id FROM recsys.items i WHERE NOT EXISTS (SELECT FROM"
            " recsys.item_neighbors n WHERE n.item_key = i.item_key) LIMIT 1").fetchone()
        more = {"recommend(user, 5, category, false, filter, exclude_seen)":
                ("SELECT * FROM recsys.recommend(%s, 5, %s, false, '{}'::jsonb, true)",
                 (user, category)),
                "recommend(unknown user)": ("SELECT * FROM recsys.recommend('nobody', 10)", ()),
                "recommend_for_session(empty)":
                ("SELECT * FROM recsys.recommend_for_session(ARRAY[]::text[], 10)", ()),
                "similar_items(item without neighbours)":
                ("SELECT * FROM recsys.similar_items(%s, 10)", lonely)}
        for name, (sql, params) in more.items():
            if params is None:
                continue
            sb.execute("SET ROLE recsys_app")
            primary.execute("SET ROLE recsys_app")
            rows = sb.execute(sql, params).fetchall()
            assert rows == primary.execute(sql, params).fetchall(), name
            assert rows or name.startswith("similar"), name
            sb.execute("RESET ROLE")
            primary.execute("RESET ROLE")


def test_an_interest_shift_on_the_primary_reaches_the_standby(served: str, standby: None
                                                              ) -> None:
    from recsys_db.interest.live import refresh_states

    with psycopg.connect(served, autocommit=True) as primary, _on_standby(served) as sb:
        user = primary.execute(  # an active user who has not touched every category yet
            "SELECT u.user_id FROM recsys.events e JOIN recsys.users u USING (user_key)"
            " GROUP BY u.user_id HAVING count(DISTINCT e.category_key) <= 5"
            " ORDER BY count(*) DESC, u.user_id LIMIT 1").fetchone()[0]
        _caught_up(primary, sb)
        before = _recommend(sb, user)
        # the user's new interest: the most popular items of a category they never touched
        new_items = [r[0] for r in primary.execute(
            "SELECT i.item_id FROM recsys.items i JOIN recsys.events e USING (item_key)"
            " WHERE e.category_key = (SELECT x.category_key FROM recsys.events x"
            "   WHERE NOT EXISTS (SELECT FROM recsys.events y JOIN recsys.users u"
            "     ON u.user_key = y.user_key WHERE u.user_id = %s"
            "     AND y.category_key = x.category_key)"
            "   GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)"
            " GROUP BY i.item_id ORDER BY count(*) DESC, i.item_id LIMIT 5", (user,))]
        assert new_items
        ids = [primary.execute("SELECT recsys.track_event(%s, %s, 'cart')", (user, item)
                               ).fetchone()[0] for item in new_items]
        with psycopg.connect(served) as worker_conn:  # what `recsys-db worker` runs
            assert refresh_states(worker_conn).users >= 1
        _caught_up(primary, sb)
        after = _recommend(sb, user)
        assert after != before
        assert after == _recommend(primary, user)
        assert {r[0] for r in after} & set(new_items) or any(
            "similar to" in r[3] for r in after)
        covered = sb.execute(
            "SELECT s.last_event_id FROM recsys.user_states s JOIN recsys.users u"
            " USING (user_key) JOIN recsys.model_versions v ON v.version_id = s.version_id"
            " AND v.kind = 'interest' AND v.active WHERE u.user_id = %s", (user,)).fetchone()[0]
        assert covered >= max(ids)  # the worker's new state came through replication


def test_writes_on_the_standby_fail_at_once_with_a_clear_error(served: str, standby: None
                                                               ) -> None:
    with psycopg.connect(served, autocommit=True) as primary, _on_standby(served) as sb:
        user, item = _busy_user(primary)
        sb.execute("SET ROLE recsys_app")
        for sql, args in [("SELECT recsys.track_event(%s, %s, 'pv')", (user, item)),
                          ("SELECT recsys.exclude_item(%s, %s)", (user, item)),
                          ("SELECT recsys.set_item_active(%s, false)", (item,))]:
            started = time.perf_counter()
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only"):
                sb.execute(sql, args)
            assert time.perf_counter() - started < 5, sql


def test_start_and_stop_without_a_primary_say_so(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys_db import replica
    from recsys_db.errors import ConfigError

    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))  # no embedded server here
    with pytest.raises(ConfigError, match="primary is not running"):
        replica.start()
    assert replica.stop() is False
    st = replica.status()
    assert not st.running and not st.exists


def test_cli_status_read_url_and_errors(standby: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from recsys_db import config, replica
    from recsys_db.cli import app
    from recsys_db.errors import ConfigError

    runner = CliRunner()
    result = runner.invoke(app, ["replica", "status", "--json"])
    assert result.exit_code == 0, result.output
    st = json.loads(result.output.strip().splitlines()[-1])
    assert st["running"] and st["in_recovery"] and st["streaming"]
    assert st["port"] == replica.DEFAULT_PORT and st["replay_lag_bytes"] is not None

    with pytest.raises(ConfigError, match="already running"):
        replica.start()
    monkeypatch.setenv(config.DATABASE_URL_ENV, "postgresql://elsewhere/db")
    result = runner.invoke(app, ["replica", "start"])
    assert result.exit_code == 1 and "external server" in result.output

    monkeypatch.delenv(config.DATABASE_URL_ENV)
    assert replica.read_url() == replica.standby_url(driver="postgresql+psycopg")
    monkeypatch.setenv(config.REPLICA_URL_ENV, "postgresql://shop@replica-host/shop")
    assert replica.read_url() == "postgresql+psycopg://shop@replica-host/shop"
