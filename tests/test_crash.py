"""SIGKILL a job at a chosen point: the active models keep serving, the database stays
consistent, and the next run cleans up and succeeds.

The job runs as a real subprocess (`recsys-db jobs run ...`). The test holds a lock the job will
need at the chosen point, waits until pg_stat_activity shows the job's backend blocked on it,
kills the job with SIGKILL, then releases the lock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from recsys_db.jobs.runner import run_from_settings, run_job
from recsys_db.jobs.settings import load_settings
from recsys_db.registry import active_version

BLOCKED = ("SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")


@contextmanager
def job_process(url: str, home: str, *args: str) -> Iterator[subprocess.Popen]:
    env = {**os.environ, "RECSYS_DATABASE_URL": url, "RECSYS_HOME": home}
    proc = subprocess.Popen([sys.executable, "-m", "recsys_db.cli", "jobs", "run", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def kill_when_blocked(proc: subprocess.Popen, watcher: psycopg.Connection,
                      holder: psycopg.Connection, timeout: float = 180) -> str:
    """Wait for the job's backend to block on `holder`'s lock, SIGKILL the job, release the
    lock, wait for the orphaned backend to end; returns the blocked query."""
    deadline = time.monotonic() + timeout
    while True:
        row = watcher.execute(BLOCKED).fetchone()
        if row is not None:
            break
        assert proc.poll() is None, f"job ended before blocking: {proc.stdout.read().decode()}"
        assert time.monotonic() < deadline, "job never reached the blocking point"
        time.sleep(0.1)
    backend, query = row
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    holder.rollback()  # release: the orphaned backend finishes its statement, sees EOF, aborts
    while watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                          (backend,)).fetchone():
        time.sleep(0.05)
    return query


def snapshot(conn: psycopg.Connection) -> dict:
    return {
        "active": conn.execute("SELECT kind, version_id FROM recsys.model_versions WHERE active "
                               "ORDER BY kind").fetchall(),
        "partitions": conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'recsys.item_embeddings'::regclass ORDER BY 1").fetchall(),
        # scores to 9 places: a plan change (new statistics after the dead run's writes) may
        # sum the same floats in another order
        "recommend": [(item, round(score, 9), rank, reason) for item, score, rank, reason in
                      conn.execute("SELECT * FROM recsys.recommend('3', k => 10)")],
    }


def test_kill_mid_write_leaves_active_version_serving(trained, conn, tmp_path, monkeypatch):
    before = snapshot(conn)
    versions = conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0]
    with psycopg.connect(trained) as holder, \
            job_process(trained, str(tmp_path), "train-interest", "--epochs", "1", "--dim",
                        "16", "--max-len", "20") as proc:
        # the version's weights, vectors and HNSW index are written before the user states
        holder.execute("LOCK TABLE recsys.user_states IN ACCESS EXCLUSIVE MODE")
        query = kill_when_blocked(proc, conn, holder)
    assert "user_states" in query
    assert snapshot(conn) == before  # nothing of the new version is visible
    assert conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0] == versions
    dead = conn.execute("SELECT run_id FROM recsys.job_runs WHERE job = 'train-interest' "
                        "AND status = 'running'").fetchall()
    assert len(dead) == 1

    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))  # resume from the dead run's checkpoint
    monkeypatch.setenv("RECSYS_ACTIVATION_TOLERANCE", "0.9")  # 1 epoch may score lower
    result = run_from_settings("train-interest", load_settings(),
                               {"epochs": 1, "dim": 16, "max_len": 20}, retries=0)
    assert result["cleaned_up"]["abandoned_runs"] == [dead[0][0]]
    assert result["resumed_from_epoch"] == 1
    assert active_version(conn, "interest") == result["version_id"]
    assert conn.execute("SELECT recsys.recommend('3', k => 10)").fetchall()


def test_kill_mid_activation_keeps_the_previous_version(trained, conn, tmp_path):
    before = snapshot(conn)
    old_cf = active_version(conn, "cf")
    with psycopg.connect(trained) as holder, \
            job_process(trained, str(tmp_path), "train-cf") as proc:
        # activation locks the new row, then must update the old active one: held here
        holder.execute("SELECT 1 FROM recsys.model_versions WHERE version_id = %s FOR UPDATE",
                       (old_cf,))
        query = kill_when_blocked(proc, conn, holder)
    assert "active = false" in query
    assert snapshot(conn) == before
    new = conn.execute("SELECT version_id, status, active FROM recsys.model_versions "
                       "WHERE kind = 'cf' AND version_id > %s", (old_cf,)).fetchall()
    assert [(s, a) for _, s, a in new] == [("ready", False)]  # complete, never activated
    assert conn.execute("SELECT count(*) FROM recsys.model_activations WHERE version_id = %s",
                        (new[0][0],)).fetchone()[0] == 0

    result = run_job("train-cf")
    assert result["activated"] and active_version(conn, "cf") == result["version_id"]
    assert len(result["cleaned_up"]["abandoned_runs"]) == 1


def test_kill_mid_ranker_training_drops_its_helper_versions(trained, conn, tmp_path):
    before = snapshot(conn)
    with psycopg.connect(trained) as holder, \
            job_process(trained, str(tmp_path), "train-ranker") as proc:
        # the ranker writes as-of helper versions (interest + CF) for each of its cut-offs and
        # commits them; once the first pair is committed, block its next use of the neighbours
        deadline = time.monotonic() + 180
        while conn.execute("SELECT count(*) FROM recsys.model_versions "
                           "WHERE status = 'building'").fetchone()[0] < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        holder.execute("LOCK TABLE recsys.item_neighbors IN ACCESS EXCLUSIVE MODE")
        kill_when_blocked(proc, conn, holder)
    assert snapshot(conn)["active"] == before["active"]
    assert snapshot(conn)["recommend"] == before["recommend"]
    helpers = [v for (v,) in conn.execute(
        "SELECT version_id FROM recsys.model_versions WHERE status = 'building'")]
    assert helpers, "the dead run should have left a committed helper version"

    result = run_job("train-ranker")
    assert sorted(result["cleaned_up"]["dropped_versions"]) == sorted(helpers)
    assert conn.execute("SELECT count(*) FROM recsys.model_versions WHERE status = 'building'"
                        ).fetchone()[0] == 0
    assert snapshot(conn)["partitions"] == before["partitions"]
    assert active_version(conn, "ranker") == result["version_id"]
