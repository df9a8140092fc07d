"""run_job: advisory-lock skips, bounded retries with backoff, clean-up after dead runs."""

from __future__ import annotations

import time

import psycopg
import pytest

from recsys_db.jobs import catalog
from recsys_db.jobs.catalog import Job
from recsys_db.jobs.runner import run_job


def runs(conn: psycopg.Connection, job: str) -> list[tuple]:
    return conn.execute("SELECT status, attempt, error FROM recsys.job_runs WHERE job = %s "
                        "ORDER BY run_id", (job,)).fetchall()


def test_second_runner_skips_while_the_lock_is_held(conn):
    with psycopg.connect(conn.info.dsn, autocommit=True) as other_host:
        other_host.execute("SELECT pg_advisory_lock(hashtext('recsys-job:refresh-transitions'))")
        result = run_job("refresh-transitions")
        assert result["skipped"] == "another run of this job holds its lock"
    assert runs(conn, "refresh-transitions") == [
        ("skipped", 1, "another run of this job holds its lock")]
    assert "transitions" in run_job("refresh-transitions")  # lock released with the session
    assert runs(conn, "refresh-transitions")[-1][0] == "succeeded"


@pytest.fixture
def flaky(monkeypatch):
    """A job failing with a transient error the first `failures` times."""
    def make(failures: int, error: type[Exception] = ConnectionError) -> list[float]:
        calls: list[float] = []

        def run(ctx):
            calls.append(time.monotonic())
            ctx.conn.execute("SELECT 1")
            if len(calls) <= failures:
                raise error(f"transient failure {len(calls)}")
            return {"rows_read": 7}
        monkeypatch.setitem(catalog.JOBS, "flaky", Job("flaky", "test job", run))
        return calls
    return make


def test_failures_are_retried_with_exponential_backoff(conn, flaky):
    calls = flaky(2)
    result = run_job("flaky", retries=3, backoff_seconds=0.2)
    assert result["attempt"] == 3 and result["rows_read"] == 7
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # 0.2 s, then doubled
    statuses = runs(conn, "flaky")
    assert [(s, a) for s, a, _ in statuses] == [("failed", 1), ("failed", 2), ("succeeded", 3)]
    assert "ConnectionError: transient failure 1" in statuses[0][2]


def test_retries_are_bounded_and_permanent_errors_not_retried(conn, flaky):
    calls = flaky(5)
    with pytest.raises(ConnectionError, match="transient failure 3"):
        run_job("flaky", retries=2, backoff_seconds=0.01)
    assert len(calls) == 3
    assert [s for s, _, _ in runs(conn, "flaky")] == ["failed"] * 3

    conn.execute("DELETE FROM recsys.job_runs")
    calls = flaky(5, ValueError)
    with pytest.raises(ValueError):
        run_job("flaky", retries=2, backoff_seconds=0.01)
    assert len(calls) == 1  # another attempt cannot fix bad input


def test_next_run_cleans_up_after_a_dead_run(trained, conn):
    """A 'running' row whose process is gone (no lock held) and the half-built version it left:
    the next run marks the row abandoned and drops the version."""
    dead = conn.execute("INSERT INTO recsys.job_runs (job, status, pid) VALUES "
                        "('train-cf', 'running', 999999) RETURNING run_id").fetchone()[0]
    leftover = conn.execute("INSERT INTO recsys.model_versions (kind, status, job_run_id) "
                            "VALUES ('cf', 'building', %s) RETURNING version_id",
                            (dead,)).fetchone()[0]
    conn.execute("INSERT INTO recsys.item_neighbors VALUES (%s, 1, 2, 0.5)", (leftover,))
    result = run_job("train-cf")
    assert result["cleaned_up"] == {"abandoned_runs": [dead], "dropped_versions": [leftover]}
    status, error = conn.execute("SELECT status, error FROM recsys.job_runs WHERE run_id = %s",
                                 (dead,)).fetchone()
    assert status == "failed" and error.startswith("abandoned")
    assert conn.execute("SELECT count(*) FROM recsys.model_versions WHERE version_id = %s",
                        (leftover,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM recsys.item_neighbors WHERE version_id = %s",
                        (leftover,)).fetchone()[0] == 0


def test_cli_reports_a_failed_run_in_one_line(conn):
    from typer.testing import CliRunner

    from recsys_db.cli import app

    result = CliRunner().invoke(app, ["jobs", "run", "train-cf"])
    assert result.exit_code == 1
    assert "train-cf failed: ValueError: no events" in result.output
    assert runs(conn, "train-cf")[0][0] == "failed"
    bad = CliRunner().invoke(app, ["jobs", "run", "train-cf", "--epochs", "3"])
    assert bad.exit_code == 1 and "only apply to train-interest" in bad.output
