"""`recsys-db scheduler`: run the jobs on their cron schedules until stopped.

APScheduler (3.x) does the timing: cron triggers, one instance of a job per process at a time
(max_instances=1), missed runs coalesced. Each run is `run_from_settings` (jobs/runner.py): the
job's options, retries and activation tolerance come from the same settings the schedules do.
Across processes and hosts, the runner's advisory lock makes sure a job never runs twice at
once; a scheduler that loses the race records a 'skipped' run. SIGTERM or SIGINT stops it
cleanly: no new runs start, retry waits end, a running job finishes (if the process is killed
anyway, the next run cleans up: see jobs.runner.cleanup_abandoned).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from recsys_db.jobs.runner import run_from_settings
from recsys_db.jobs.settings import Settings, cron_trigger

log = logging.getLogger(__name__)


def _runner(name: str, settings: Settings, url: str | None, stop: threading.Event,
            report: Callable[[str, dict[str, Any] | BaseException], None]) -> Callable[[], None]:
    def run() -> None:
        t0 = time.perf_counter()
        try:
            result = run_from_settings(name, settings, url=url, stop=stop)
        except Exception as exc:  # recorded in job_runs; the scheduler carries on
            log.error("%s failed after %.1f s: %s: %s", name, time.perf_counter() - t0,
                      type(exc).__name__, exc)
            report(name, exc)
            return
        if "skipped" in result:
            log.info("%s skipped: %s", name, result["skipped"])
        else:
            log.info("%s run %s succeeded in %.1f s", name, result.get("run_id"),
                     time.perf_counter() - t0)
        report(name, result)
    return run


def due_runs(settings: Settings, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """(time, job) of every run the schedules fire in [start, end), in order: what the
    scheduler would start between those times, computed by the same cron triggers (tests
    simulate days of the schedule with it, moving a clock instead of waiting)."""
    runs: list[tuple[datetime, str]] = []
    for name, expr in settings.schedules.items():
        if expr is None:
            continue
        trigger = cron_trigger(expr, settings.timezone, name)
        at = trigger.get_next_fire_time(None, start)
        while at is not None and at < end:
            runs.append((at, name))
            at = trigger.get_next_fire_time(at, at + timedelta(microseconds=1))
    order = list(settings.schedules)
    return sorted(runs, key=lambda run: (run[0], order.index(run[1])))


def build_scheduler(settings: Settings, url: str | None, stop: threading.Event,
                    report: Callable[[str, dict[str, Any] | BaseException], None]
                    ) -> BackgroundScheduler:
    """A scheduler with one cron-triggered entry per scheduled job (not started)."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
        timezone=settings.timezone)
    for name, expr in settings.schedules.items():
        if expr is None:
            continue
        scheduler.add_job(_runner(name, settings, url, stop, report),
                          cron_trigger(expr, settings.timezone, name), id=name, name=name)
    return scheduler


def run_scheduler(settings: Settings, url: str | None = None, stop_after: float | None = None,
                  report: Callable[[str, dict[str, Any] | BaseException], None] | None = None
                  ) -> None:
    """Run until SIGTERM/SIGINT (or `stop_after` seconds); running jobs finish first."""
    stop = threading.Event()
    scheduler = build_scheduler(settings, url, stop, report or (lambda name, result: None))
    if not scheduler.get_jobs():
        raise ValueError("no job has a schedule: set [schedule] in recsys.toml or "
                         "RECSYS_SCHEDULE_<JOB>")

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("scheduled %s: next run %s", job.name, job.next_run_time)
    try:
        stop.wait(stop_after)
    finally:
        stop.set()
        scheduler.shutdown(wait=True)  # running jobs finish; nothing new starts
        for sig, handler in previous.items():
            signal.signal(sig, handler)
