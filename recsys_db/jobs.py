"""Jobs: named units of work, each run recorded in recsys.job_runs under an advisory lock.

At most one run of a job at a time across all hosts: the runner takes a session-level
PostgreSQL advisory lock on the job's name (released automatically if the process dies); a
second runner records a 'skipped' run and returns.
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from recsys_db.db import connect
from recsys_db.errors import JobError

JobFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: JobFn


def _train_interest(conn: psycopg.Connection, run_id: int, **options: Any) -> dict[str, Any]:
    from recsys_db.config import recsys_home
    from recsys_db.interest.job import train_interest
    from recsys_db.interest.train import TrainConfig

    callbacks = {k: options.pop(k) for k in ("on_epoch", "on_batch") if k in options}
    config = TrainConfig(**options)
    return train_interest(conn, config, checkpoint_dir=recsys_home() / "checkpoints",
                          job_run_id=run_id, **callbacks)


def _refresh_states(conn: psycopg.Connection, run_id: int, **_: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from recsys_db.interest.live import refresh_states

    stats = refresh_states(conn)
    return {**asdict(stats), "rows_read": stats.events}


def _train_cf(conn: psycopg.Connection, run_id: int, **_: Any) -> dict[str, Any]:
    from recsys_db.cf import train_cf

    return train_cf(conn, job_run_id=run_id)


def _train_ranker(conn: psycopg.Connection, run_id: int, **_: Any) -> dict[str, Any]:
    from recsys_db.ranker.train import train_ranker

    return train_ranker(conn, job_run_id=run_id)


def _refresh_transitions(conn: psycopg.Connection, run_id: int, **_: Any) -> dict[str, Any]:
    rows = conn.execute("SELECT recsys.refresh_category_transitions()").fetchone()[0]
    conn.commit()
    return {"transitions": rows}


JOBS: dict[str, Job] = {j.name: j for j in (
    Job("train-interest", "train the interest encoder and activate a new version",
        _train_interest),
    Job("refresh-states", "advance user states through new events (no retraining)",
        _refresh_states),
    Job("train-cf", "item-item co-occurrence neighbours and item popularity, as a new version",
        _train_cf),
    Job("train-ranker", "LightGBM lambdarank re-ranker, compiled into a SQL function",
        _train_ranker),
    Job("refresh-transitions", "recompute recsys.category_transitions", _refresh_transitions),
)}


def run_job(name: str, url: str | None = None, **options: Any) -> dict[str, Any]:
    """Run job `name` once; returns its metrics (or {'skipped': reason})."""
    job = JOBS.get(name)
    if job is None:
        raise JobError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}")
    with connect(url, autocommit=True) as control, connect(url) as work:
        run_id = control.execute(
            "INSERT INTO recsys.job_runs (job, status, host, pid) VALUES (%s, 'running', %s, %s)"
            " RETURNING run_id", (name, socket.gethostname(), os.getpid())).fetchone()[0]
        locked = control.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                                 (f"recsys-job:{name}",)).fetchone()[0]
        if not locked:
            reason = "another run of this job holds its lock"
            control.execute("UPDATE recsys.job_runs SET status = 'skipped', error = %s, "
                            "finished_at = now() WHERE run_id = %s", (reason, run_id))
            return {"skipped": reason, "run_id": run_id}
        try:
            metrics = job.run(work, run_id, **options)
        except BaseException as exc:
            work.rollback()
            control.execute(
                "UPDATE recsys.job_runs SET status = 'failed', finished_at = now(), error = %s"
                " WHERE run_id = %s",
                (f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}", run_id))
            raise
        control.execute(
            "UPDATE recsys.job_runs SET status = 'succeeded', finished_at = now(), "
            "rows_read = %s, metrics = %s WHERE run_id = %s",
            (metrics.get("rows_read"), json.dumps(metrics, default=str), run_id))
        return {**metrics, "run_id": run_id}
