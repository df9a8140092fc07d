"""Forgetting users (issue 14): recsys.forget_user / recsys-db forget / recsys_db.forget, the
tombstones every event door honours, and a canary that leaves no trace once the jobs ran."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from recsys_db import doctor, synth
from recsys_db.cli import app
from recsys_db.forget import ForgetError, awaiting_retraining, forget_users
from recsys_db.ingest import load_events
from recsys_db.jobs.catalog import JOBS
from recsys_db.jobs.runner import run_job

CANARY = "canary-7f3a"


def _hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def _rows(user: str, items: list[str], start: int = 1_511_000_000) -> list[tuple]:
    return [(user, item, "c1", "pv", start + 60 * i) for i, item in enumerate(items)]


def test_forget_user_removes_events_rows_and_items_and_leaves_a_tombstone(conn, tmp_path):
    rows = _rows("alice", ["i1", "i2", "i3"]) + _rows("bob", ["i2", "i4"]) \
        + _rows(CANARY, ["only-canary-1", "i1", "only-canary-2"], start=1_510_000_000)
    load_events(rows)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{CANARY},i1,c1,click,1511000000\nbob,i1,c1,click,1511000000\n"
                   f"{CANARY},i1,c1\n")
    load_events(bad, on_error="quarantine")
    assert conn.execute("SELECT count(*) FROM recsys.rejected_events").fetchone()[0] == 3
    # any table with a user_key or user_id column is cleared too (exclusions, those to come)
    conn.execute("CREATE TABLE recsys.test_notes (user_key integer, user_id text, note text)")
    conn.execute("INSERT INTO recsys.test_notes SELECT u.user_key, NULL, 'k' FROM recsys.users u "
                 "WHERE u.user_id = %s UNION ALL SELECT NULL, %s, 'id'", (CANARY, CANARY))

    got = conn.execute("SELECT * FROM recsys.forget_user(%s)", (f"  {CANARY} ",)).fetchone()
    # users, known, events, rejected rows, other per-user rows (test_notes), items, versions
    assert got == (1, 1, 3, 2, 2, 2, 0)
    assert conn.execute("SELECT count(*) FROM recsys.test_notes").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM recsys.users WHERE user_id = %s",
                        (CANARY,)).fetchone()[0] == 0
    items = {r[0]: r[1] for r in conn.execute("SELECT item_id, first_seen FROM recsys.items")}
    assert sorted(items) == ["i1", "i2", "i3", "i4"]  # the canary's own items are gone
    # i1's first event was the canary's: first_seen now comes from alice's
    assert items["i1"].timestamp() == 1_511_000_000
    assert conn.execute("SELECT raw FROM recsys.rejected_events").fetchall() == [
        ("bob,i1,c1,click,1511000000",)]
    assert conn.execute("SELECT user_hash, skipped_events FROM recsys.forgotten_users"
                        ).fetchall() == [(_hash(CANARY), 0)]

    # every door skips and counts the forgotten user; others load as before
    again = load_events(rows)
    assert (again.forgotten, again.loaded, again.duplicates, again.new_items) == (3, 0, 5, 0)
    bad_again = load_events(bad, on_error="quarantine")  # bad rows of theirs are not kept
    assert (bad_again.forgotten, bad_again.rejected) == (2, 1)
    assert conn.execute("SELECT recsys.track_event(%s, 'x9', 'pv')", (CANARY,)
                        ).fetchone()[0] is None
    assert conn.execute("SELECT recsys.track_event('carol', 'x9', 'pv')").fetchone()[0]
    assert conn.execute("SELECT skipped_events FROM recsys.forgotten_users").fetchone()[0] == 6
    assert conn.execute("SELECT count(*) FROM recsys.users WHERE user_id = %s",
                        (CANARY,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM recsys.items WHERE item_id LIKE 'only-canary%%'"
                        ).fetchone()[0] == 0
    # in reject mode a forgotten user's bad row rejects nothing
    assert load_events([(CANARY, "i1", "c1", "click", 1_511_000_000)]).forgotten == 1


def test_forget_validates_its_arguments(conn):
    for value in (None, "  ", "x" * 257):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="forget_user"):
            conn.execute("SELECT * FROM recsys.forget_user(%s)", (value,))
    with pytest.raises(ForgetError, match="must be present"):
        forget_users(["ok", ""])
    with pytest.raises(ForgetError, match="no user id"):
        forget_users([])
    assert conn.execute("SELECT count(*) FROM recsys.forgotten_users").fetchone()[0] == 0
    # an id never seen gets its tombstone all the same (an old file may still hold it)
    assert forget_users(["never-seen"]).known_users == 0
    assert load_events(_rows("never-seen", ["a"])).forgotten == 1


def test_the_app_role_may_forget(conn):
    role = conn.execute("SELECT value #>> '{}' FROM recsys.meta WHERE key = 'app_role'"
                        ).fetchone()[0]
    load_events(_rows("alice", ["i1"]))
    with conn.transaction():
        conn.execute(psycopg.sql.SQL("SET LOCAL ROLE {}").format(psycopg.sql.Identifier(role)))
        assert conn.execute("SELECT events FROM recsys.forget_user('alice')").fetchone()[0] == 1


def test_cli_forget_reads_ids_from_arguments_and_a_file(conn, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    checkpoints = tmp_path / "home" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "interest-abc.pt").write_bytes(b"weights")
    load_events(_rows("u1", ["a", "b"]) + _rows("u2", ["b"]) + _rows("u3", ["c"]))
    ids = tmp_path / "ids.txt"
    ids.write_text("u2\n\n  u3  \nu9\n")
    result = CliRunner().invoke(app, ["forget", "u1", "--file", str(ids), "--json"])
    assert result.exit_code == 0, result.output
    assert '"users": 4, "known_users": 3, "events": 4' in result.output
    assert '"checkpoint_files": 1' in result.output
    assert not checkpoints.exists()
    assert conn.execute("SELECT count(*) FROM recsys.users").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM recsys.forgotten_users").fetchone()[0] == 4
    result = CliRunner().invoke(app, ["forget"])
    assert result.exit_code == 1 and "give user ids" in result.output


def test_a_forget_and_a_concurrent_load_never_leave_the_users_events(db_url, conn):
    """A load that stages a user's rows before the forget commits after it: the forget waits
    for the load (shared lock on the user's bucket) and then deletes what it stored."""
    load_events(_rows("victim", ["a"]))
    loader = psycopg.connect(db_url)
    loader.execute("SELECT recsys.track_event('victim', 'b', 'pv')")  # holds the bucket
    done = threading.Event()

    def forget() -> None:
        forget_users(["victim"])
        done.set()

    worker = threading.Thread(target=forget)
    worker.start()
    assert not done.wait(1.0), "forget did not wait for the open transaction"
    loader.commit()
    worker.join(10)
    assert done.is_set()
    loader.close()
    assert conn.execute("SELECT count(*) FROM recsys.events").fetchone()[0] == 0
    assert conn.execute("SELECT recsys.track_event('victim', 'c', 'pv')").fetchone()[0] is None


def _dangling(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM recsys.events e WHERE NOT EXISTS "
        "(SELECT 1 FROM recsys.items i WHERE i.item_key = e.item_key)").fetchone()[0]


def test_a_forget_keeps_an_item_a_concurrent_door_is_storing_an_event_of(db_url, conn):
    """An item only the forgotten user had touched, while another user's track_event on it is
    not committed yet: the forget waits for it (the item rows' lock), then keeps the item."""
    load_events(_rows("leaving", ["solo", "other"]))
    writer = psycopg.connect(db_url)
    writer.execute("SELECT recsys.track_event('staying', 'solo', 'pv', to_timestamp(1511900000))")
    done = threading.Event()
    worker = threading.Thread(target=lambda: (forget_users(["leaving"]), done.set()))
    worker.start()
    try:
        assert not done.wait(1.0), "forget did not wait for the open transaction"
    finally:
        writer.commit()
        writer.close()
        worker.join(10)
    assert done.is_set()
    assert [r[0] for r in conn.execute("SELECT i.item_id FROM recsys.events e "
                                       "JOIN recsys.items i USING (item_key)")] == ["solo"]
    assert _dangling(conn) == 0


def test_a_load_waits_for_a_forget_and_stores_every_event_with_its_item(db_url, conn):
    """A bulk load that starts while a forget is deleting items the load names: the load waits
    for the forget's commit (the item rows' lock), then stores the item again and every event
    - none dropped for want of its item, none pointing at a deleted one."""
    load_events(_rows("leaving", ["solo", "other"]))
    forgetting = psycopg.connect(db_url)
    forgetting.execute("SELECT * FROM recsys.forget_user('leaving')")
    results: list = []
    loading = threading.Thread(target=lambda: results.append(
        load_events(_rows("staying", ["solo", "new"], start=1_511_900_000))))
    loading.start()
    try:
        loading.join(1.0)
        assert loading.is_alive(), "the load did not wait for the open forget"
    finally:
        forgetting.commit()
        forgetting.close()
        loading.join(10)
    (result,) = results
    assert (result.loaded, result.duplicates, result.new_items) == (2, 0, 2)
    assert sorted(r[0] for r in conn.execute("SELECT i.item_id FROM recsys.events e "
                                             "JOIN recsys.items i USING (item_key)")) \
        == ["new", "solo"]
    assert _dangling(conn) == 0


CANARY_ITEMS = ["canary-only-a", "canary-only-b", "canary-only-c"]
JOB_OPTIONS = {"train-interest": {"epochs": 1, "dim": 8},
               "train-ranker": {"num_trees": 10, "train_windows": 2}}
SCHEDULED = ("train-interest", "refresh-states", "train-cf", "train-ranker",
             "refresh-transitions")


def _run_scheduled_jobs() -> None:
    for name in SCHEDULED:
        config = JOBS[name].make_config(JOB_OPTIONS.get(name))
        # tolerance 0.99: the retrained versions replace the old ones whatever their metric
        result = run_job(name, config=config, tolerance=0.99)
        assert "skipped" not in result, (name, result)


def _traces(conn: psycopg.Connection, home: Path, keys: list[int]) -> list[str]:
    """Where the canary's id, its unique item ids or keys still appear."""
    words = [CANARY, *CANARY_ITEMS]
    found = []
    tables = conn.execute(
        "SELECT c.oid::regclass::text, c.relname FROM pg_class c "
        "WHERE c.relnamespace = 'recsys'::regnamespace AND c.relkind = 'r' ORDER BY 1").fetchall()
    for table, name in tables:
        query = psycopg.sql.SQL("SELECT count(*) FROM {} t WHERE t::text LIKE ANY (%s)").format(
            psycopg.sql.Identifier("recsys", name))
        if conn.execute(query, ([f"%{w}%" for w in words],)).fetchone()[0]:
            found.append(f"table {table}")
        for column in ("item_key", "neighbor_key"):
            if conn.execute("SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND "
                            "attname = %s AND NOT attisdropped", (table, column)).fetchone():
                query = psycopg.sql.SQL("SELECT count(*) FROM {} WHERE {} = ANY (%s)").format(
                    psycopg.sql.Identifier("recsys", name), psycopg.sql.Identifier(column))
                if conn.execute(query, (keys,)).fetchone()[0]:
                    found.append(f"table {table}.{column}")
    for word in words:
        if conn.execute("SELECT count(*) FROM recsys.model_blobs b WHERE position("
                        "convert_to(%s, 'UTF8') IN b.blob) > 0", (word,)).fetchone()[0]:
            found.append(f"model blob: {word}")
        if conn.execute("SELECT count(*) FROM pg_proc p WHERE p.pronamespace = "
                        "'recsys'::regnamespace AND p.prosrc LIKE %s", (f"%{word}%",)
                        ).fetchone()[0]:
            found.append(f"function body: {word}")
    for path in home.rglob("*"):
        if path.is_file() and any(w.encode() in path.read_bytes() for w in words):
            found.append(f"file {path}")
    return found


def test_a_forgotten_canary_leaves_no_trace_once_the_jobs_ran(db_url, conn, tmp_path,
                                                              monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("RECSYS_HOME", str(home))
    path = tmp_path / "synth.csv"
    synth.generate(path, users=80, items=300, events=5_000, seed=3)
    load_events(path)
    start, category, shared = conn.execute(
        "SELECT min(e.ts), min(c.category_id), (SELECT i.item_id FROM recsys.items i "
        "ORDER BY i.item_key LIMIT 1) FROM recsys.events e "
        "JOIN recsys.categories c ON c.category_key = e.category_key").fetchone()
    t0 = int(start.timestamp()) + 3600
    # the canary: its unique items viewed in turn, again and again (pairs for CF, a sequence
    # for the interest model), a shared item, and a quarantined row
    items = (CANARY_ITEMS + [shared]) * 4
    load_events([(CANARY, item, category, "pv", t0 + 600 * i) for i, item in enumerate(items)])
    load_events([(CANARY, CANARY_ITEMS[0], category, "click", t0)], on_error="quarantine")
    keys = [k for (k,) in conn.execute("SELECT item_key FROM recsys.items WHERE item_id = "
                                       "ANY (%s)", (CANARY_ITEMS,))]
    _run_scheduled_jobs()
    (home / "checkpoints").mkdir(parents=True, exist_ok=True)
    (home / "checkpoints" / "interest-0.pt").write_text(f"a checkpoint that saw {CANARY}")
    assert "table recsys.users" in _traces(conn, home, keys)  # the scan finds what is there
    assert any(t.startswith("file ") for t in _traces(conn, home, keys))

    result = forget_users([CANARY])
    assert (result.known_users, result.events, result.rejected_events, result.items) == \
        (1, len(items), 1, 3)
    forgotten, awaiting, stale = awaiting_retraining(conn)
    assert (forgotten, awaiting) == (1, 1)
    assert {s.split(" v")[0] for s in stale} == {"interest", "cf", "ranker",
                                                 "category transitions"}
    check = {c.name: c for c in doctor.run_checks()}["forgotten"]
    assert check.status == "warn" and "1 forgotten users awaiting retraining" in check.detail
    assert "recsys-db jobs run train-interest" in check.fix

    _run_scheduled_jobs()
    assert awaiting_retraining(conn)[:2] == (1, 0)
    assert {c.name: c for c in doctor.run_checks()}["forgotten"].status == "ok"
    assert _traces(conn, home, keys) == []
    # the old versions' data went with their replacement: nothing to roll back to
    retired = conn.execute("SELECT count(*) FROM recsys.model_versions WHERE status = 'retired'"
                           ).fetchone()[0]
    assert retired >= 3
    user = conn.execute("SELECT user_id FROM recsys.users ORDER BY user_key LIMIT 1").fetchone()
    assert len(conn.execute("SELECT * FROM recsys.recommend(%s, 10)", user).fetchall()) == 10
