"""Jobs: named units of work, each run recorded in recsys.job_runs under an advisory lock.

At most one run of a job at a time across all hosts: the runner takes a session-level
PostgreSQL advisory lock on the job's name (released automatically if the process dies); a
second runner records a 'skipped' run and returns. Holding the lock also proves that any other
'running' row of the job belongs to a dead process, so the run first cleans up after it
(registry.cleanup_abandoned). Failed runs are retried with exponential backoff, a bounded number
of times, each attempt its own job_runs row.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from recsys_db.db import connect
from recsys_db.errors import ConfigError, JobError

log = logging.getLogger(__name__)
JobFn = Callable[..., dict[str, Any]]
# Errors that another attempt cannot fix (bad options, no data): not retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, TypeError,
                                                     ConfigError)


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: JobFn
    config_ref: str | None = None  # "module:Class", the dataclass its options fill
    # options beside the dataclass's fields: (name, "module:function" that checks a value)
    extra_options: tuple[tuple[str, str], ...] = ()

    @property
    def config(self) -> type | None:
        """The options dataclass (imported on first use: torch loads only when needed)."""
        if self.config_ref is None:
            return None
        module, _, cls = self.config_ref.partition(":")
        return getattr(importlib.import_module(module), cls)


def _train_interest(conn: psycopg.Connection, run_id: int, **options: Any) -> dict[str, Any]:
    from recsys_db.config import recsys_home
    from recsys_db.interest.job import train_interest
    from recsys_db.interest.train import TrainConfig

    extra = {k: options.pop(k) for k in ("on_epoch", "on_batch", "on_trial", "tune_minutes")
             if k in options}
    return train_interest(conn, TrainConfig(**options),
                          checkpoint_dir=recsys_home() / "checkpoints", job_run_id=run_id,
                          **extra)


def _refresh_states(conn: psycopg.Connection, run_id: int, **_: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from recsys_db.interest.live import refresh_states

    stats = refresh_states(conn)
    return {**asdict(stats), "rows_read": stats.events}


def _train_cf(conn: psycopg.Connection, run_id: int, **options: Any) -> dict[str, Any]:
    from recsys_db.cf import CFConfig, train_cf

    return train_cf(conn, CFConfig(**options), job_run_id=run_id)


def _train_ranker(conn: psycopg.Connection, run_id: int, **options: Any) -> dict[str, Any]:
    from recsys_db.ranker.train import RankerConfig, train_ranker

    return train_ranker(conn, RankerConfig(**options), job_run_id=run_id)


def _refresh_transitions(conn: psycopg.Connection, run_id: int, **_: Any) -> dict[str, Any]:
    rows = conn.execute("SELECT recsys.refresh_category_transitions()").fetchone()[0]
    conn.commit()
    return {"transitions": rows}


JOBS: dict[str, Job] = {j.name: j for j in (
    Job("train-interest", "train the interest encoder; promote the new version",
        _train_interest, "recsys_db.interest.train:TrainConfig",
        (("tune_minutes", "recsys_db.interest.tune:check_minutes"),)),
    Job("refresh-states", "advance user states through new events (no retraining)",
        _refresh_states),
    Job("train-cf", "item-item co-occurrence neighbours and item popularity, as a new version",
        _train_cf, "recsys_db.cf:CFConfig"),
    Job("train-ranker", "LightGBM lambdarank re-ranker compiled into SQL; promote it",
        _train_ranker, "recsys_db.ranker.train:RankerConfig"),
    Job("refresh-transitions", "recompute recsys.category_transitions", _refresh_transitions),
)}


class Skipped(Exception):
    """Another run of the job holds its lock."""


@contextmanager
def recorded_run(name: str, url: str | None = None, attempt: int = 1
                 ) -> Iterator[tuple[psycopg.Connection, _Run]]:
    """A job_runs row for `name` plus its advisory lock, around the caller's work.

    Yields (work connection, run); the caller sets `run.metrics`, stored on success. Raises
    Skipped (after recording it) when another run holds the lock. On an exception the run is
    recorded as failed and the exception propagates.
    """
    with connect(url, autocommit=True) as control, connect(url) as work:
        run_id = control.execute(
            "INSERT INTO recsys.job_runs (job, status, host, pid, attempt) "
            "VALUES (%s, 'running', %s, %s, %s) RETURNING run_id",
            (name, socket.gethostname(), os.getpid(), attempt)).fetchone()[0]
        locked = control.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                                 (f"recsys-job:{name}",)).fetchone()[0]
        if not locked:
            reason = "another run of this job holds its lock"
            control.execute("UPDATE recsys.job_runs SET status = 'skipped', error = %s, "
                            "finished_at = now() WHERE run_id = %s", (reason, run_id))
            raise Skipped(reason, run_id)
        from recsys_db.registry import cleanup_abandoned

        cleaned = cleanup_abandoned(work, name, run_id)
        if cleaned:
            log.warning("%s: cleaned up after a dead run: %s", name, cleaned)
        run = _Run(run_id, cleaned)
        try:
            yield work, run
        except BaseException as exc:
            work.rollback()
            control.execute(
                "UPDATE recsys.job_runs SET status = 'failed', finished_at = now(), error = %s"
                " WHERE run_id = %s",
                (f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}", run_id))
            raise
        metrics = {**run.metrics, **({"cleaned_up": cleaned} if cleaned else {})}
        control.execute(
            "UPDATE recsys.job_runs SET status = 'succeeded', finished_at = now(), "
            "rows_read = %s, metrics = %s WHERE run_id = %s",
            (metrics.get("rows_read"), json.dumps(metrics, default=str), run_id))


@dataclass
class _Run:
    run_id: int
    cleaned: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


def run_job(name: str, url: str | None = None, *, retries: int = 0,
            backoff_seconds: float = 30.0, stop: threading.Event | None = None,
            **options: Any) -> dict[str, Any]:
    """Run job `name`; returns its metrics, or {'skipped': reason} when another run holds it.

    A failure is retried up to `retries` times after backoff_seconds, 2x, 4x... (not for
    errors another attempt cannot fix, see PERMANENT_ERRORS); setting `stop` ends the waiting.
    """
    job = JOBS.get(name)
    if job is None:
        raise JobError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}")
    for attempt in range(1, retries + 2):
        t0 = time.perf_counter()
        try:
            with recorded_run(name, url, attempt) as (work, run):
                metrics = job.run(work, run.run_id, **options)
                run.metrics = metrics
            log.info("%s: run %s succeeded in %.1f s", name, run.run_id,
                     time.perf_counter() - t0)
            return {**metrics, "run_id": run.run_id, "attempt": attempt,
                    **({"cleaned_up": run.cleaned} if run.cleaned else {})}
        except Skipped as skipped:
            log.info("%s: skipped: %s", name, skipped.args[0])
            return {"skipped": skipped.args[0], "run_id": skipped.args[1]}
        except PERMANENT_ERRORS:
            raise
        except Exception as exc:
            if attempt > retries:
                raise
            delay = backoff_seconds * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s: %s); retrying in %.0f s", name, attempt,
                        type(exc).__name__, exc, delay)
            if (stop or threading.Event()).wait(delay):  # set: the scheduler is stopping
                raise
    raise AssertionError("unreachable")
