"""The job runner: each run recorded in recsys.job_runs under an advisory lock, retried.

At most one run of a job at a time across all hosts: the runner takes a session-level
PostgreSQL advisory lock on the job's name (released automatically if the process dies); a
second runner records a 'skipped' run and returns. Holding the lock also proves that any other
'running' row of the job belongs to a dead process, so the run first cleans up after it
(`cleanup_abandoned`). Failed runs are retried with exponential backoff, a bounded number of
times, each attempt its own job_runs row.

`run_from_settings(name, settings, overrides)` is how the CLI, the scheduler and the scripts in
scripts/ run a job: options from the settings file, overridden by the caller, built into the
job's typed config; retries, backoff and the activation tolerance from the same settings.
SQL: sql/job_runs.sql.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from recsys_db.db import connect
from recsys_db.errors import ConfigError, JobError
from recsys_db.jobs.catalog import JOBS, Job, JobContext
from recsys_db.jobs.settings import Settings
from recsys_db.registry import DEFAULT_TOLERANCE, drop_versions
from recsys_db.sqlfiles import queries

log = logging.getLogger(__name__)
# Errors that another attempt cannot fix (bad options, no data): not retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, TypeError,
                                                     ConfigError)


def _sql() -> dict[str, str]:
    return queries("job_runs.sql")


class Skipped(Exception):
    """Another run of the job holds its lock."""


@dataclass
class _Run:
    run_id: int
    cleaned: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


def cleanup_abandoned(conn: psycopg.Connection, job: str, own_run_id: int) -> dict[str, Any]:
    """Clean up after dead runs of `job`. Call only while holding the job's advisory lock:
    then no other run of it is alive, so its 'running' rows are from processes that died.
    Their half-built ('building') versions are removed."""
    sql = _sql()
    dead = [r for (r,) in conn.execute(sql["abandon_dead_runs"],
                                       {"job": job, "run_id": own_run_id}).fetchall()]
    leftovers = [v for (v,) in conn.execute(sql["leftover_versions"], {"job": job}).fetchall()]
    conn.commit()
    drop_versions(conn, leftovers)
    return {"abandoned_runs": dead, "dropped_versions": leftovers} if dead or leftovers else {}


@contextmanager
def recorded_run(name: str, url: str | None = None, attempt: int = 1,
                 clock: Callable[[], datetime] | None = None
                 ) -> Iterator[tuple[psycopg.Connection, _Run]]:
    """A job_runs row for `name` plus its advisory lock, around the caller's work.

    `clock` (tests that simulate days of the schedule) stamps the row's start and end instead
    of the server's now().

    Yields (work connection, run); the caller sets `run.metrics`, stored on success. Raises
    Skipped (after recording it) when another run holds the lock. On an exception the run is
    recorded as failed and the exception propagates.
    """
    sql = _sql()

    def now() -> datetime | None:
        return None if clock is None else clock()

    with connect(url, autocommit=True) as control, connect(url) as work:
        run_id = control.execute(sql["start_run"], {
            "job": name, "host": socket.gethostname(), "pid": os.getpid(),
            "attempt": attempt, "now": now()}).fetchone()[0]
        if not control.execute(sql["try_lock"], {"key": f"recsys-job:{name}"}).fetchone()[0]:
            reason = "another run of this job holds its lock"
            control.execute(sql["skip_run"], {"reason": reason, "run_id": run_id,
                                              "now": now()})
            raise Skipped(reason, run_id)
        cleaned = cleanup_abandoned(work, name, run_id)
        if cleaned:
            log.warning("%s: cleaned up after a dead run: %s", name, cleaned)
        run = _Run(run_id, cleaned)
        try:
            yield work, run
        except BaseException as exc:
            work.rollback()
            control.execute(sql["fail_run"], {
                "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
                "run_id": run_id, "now": now()})
            raise
        metrics = {**run.metrics, **({"cleaned_up": cleaned} if cleaned else {})}
        control.execute(sql["finish_run"], {
            "rows_read": metrics.get("rows_read"), "run_id": run_id, "now": now(),
            "metrics": json.dumps(metrics, default=str)})


def job_named(name: str) -> Job:
    job = JOBS.get(name)
    if job is None:
        raise JobError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}")
    return job


def run_job(name: str, url: str | None = None, *, config: Any = None, progress: Any = None,
            tolerance: float = DEFAULT_TOLERANCE, retries: int = 0,
            backoff_seconds: float = 30.0, stop: threading.Event | None = None,
            clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """Run job `name` with `config` (default: the job's default config); returns its metrics,
    or {'skipped': reason} when another run holds it.

    A failure is retried up to `retries` times after backoff_seconds, 2x, 4x... (not for
    errors another attempt cannot fix, see PERMANENT_ERRORS); setting `stop` ends the waiting.
    `clock` replaces real time for the job_runs row and the job's `JobContext.now`.
    """
    job = job_named(name)
    config_type = job.config_type
    if config is None:
        config = job.make_config()
    elif config_type is None or not isinstance(config, config_type):
        expected = config_type.__name__ if config_type else "no config"
        raise TypeError(f"{name} takes {expected}, got {type(config).__name__}")
    for attempt in range(1, retries + 2):
        t0 = time.perf_counter()
        try:
            with recorded_run(name, url, attempt, clock) as (work, run):
                metrics = job.run(JobContext(work, run.run_id, config, tolerance, progress,
                                             None if clock is None else clock()))
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


def config_from_settings(name: str, settings: Settings,
                         overrides: Mapping[str, Any] | None = None) -> Any:
    """The typed config of job `name`: its `[jobs.NAME]` options, then `overrides`."""
    job = job_named(name)
    try:
        return job.make_config({**settings.job_options.get(name, {}), **(overrides or {})})
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def run_from_settings(name: str, settings: Settings,
                      overrides: Mapping[str, Any] | None = None, *, url: str | None = None,
                      progress: Any = None, retries: int | None = None,
                      backoff_seconds: float | None = None,
                      stop: threading.Event | None = None,
                      clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """Run job `name` as `settings` say: its options (then `overrides`), retries, backoff and
    the activation tolerance; `retries` / `backoff_seconds` override the settings' values;
    `clock` as in `run_job`."""
    config = config_from_settings(name, settings, overrides)
    return run_job(name, url, config=config, progress=progress,
                   tolerance=settings.activation_tolerance,
                   retries=settings.retries if retries is None else retries,
                   backoff_seconds=(settings.backoff_seconds if backoff_seconds is None
                                    else backoff_seconds), stop=stop, clock=clock)


def last_runs(conn: psycopg.Connection) -> dict[str, tuple[Any, ...]]:
    """job -> (status, started_at, finished_at) of its latest run."""
    return {r[0]: tuple(r[1:]) for r in conn.execute(_sql()["last_runs"])}
