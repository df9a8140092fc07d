"""Operator settings of the jobs: schedules, retries, job options and the activation tolerance.

Read from a TOML file (`--config`, else $RECSYS_CONFIG, else ./recsys.toml, else
$RECSYS_HOME/recsys.toml; none is fine: defaults apply), then overridden by environment variables:

    RECSYS_SCHEDULE_<JOB>            cron expression for a job, or "off" (JOB upper-case, - as _)
    RECSYS_JOB_RETRIES               retries after a failed run (default 2)
    RECSYS_JOB_BACKOFF_SECONDS       first retry delay, doubled each retry (default 30)
    RECSYS_ACTIVATION_TOLERANCE      relative loss a new version may have and still activate

A schedule is a cron expression: 5 fields (minute hour day month weekday) or 6 with a leading
seconds field. Every value is checked here, so a typo fails at start-up with its name, not at 3am:
job options by building the job's config (jobs/catalog.py). The runner (jobs/runner.py) runs a
job from these settings: `run_from_settings(name, settings, overrides)`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from recsys_db.config import recsys_home
from recsys_db.errors import ConfigError
from recsys_db.jobs.catalog import JOBS

CONFIG_ENV = "RECSYS_CONFIG"
DEFAULT_SCHEDULES = {
    "train-interest": "0 3 * * *",       # nightly
    "train-cf": "15 * * * *",            # hourly
    "train-ranker": "30 4 * * *",        # nightly: it trains its own as-of encoder
    "refresh-states": "* * * * *",       # every minute (the worker does it continuously)
    "refresh-transitions": "45 3 * * *",  # nightly, after train-interest
    "maintenance": "50 * * * *",         # hourly (train-cf is): old versions, runs, events
}


@dataclass(frozen=True)
class Settings:
    schedules: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_SCHEDULES))
    job_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    retries: int = 2
    backoff_seconds: float = 30.0
    activation_tolerance: float = 0.05
    timezone: str = "UTC"
    source: str = "defaults"


def config_path(explicit: Path | None = None) -> Path | None:
    """The settings file in use, or None."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return explicit
    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        if not Path(env).is_file():
            raise ConfigError(f"{CONFIG_ENV} points at {env}, which is not a file")
        return Path(env)
    for candidate in (Path("recsys.toml"), recsys_home() / "recsys.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_settings(path: Path | None = None) -> Settings:
    """Settings from the file (if any) and the environment, validated."""
    found = config_path(path)
    data: dict[str, Any] = {}
    if found is not None:
        try:
            data = tomllib.loads(found.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{found}: {exc}") from None
    unknown = set(data) - {"schedule", "scheduler", "jobs", "registry"}
    if unknown:
        raise ConfigError(f"{found}: unknown section(s) {sorted(unknown)}; known: schedule, "
                          "scheduler, jobs, registry")
    schedules: dict[str, str | None] = dict(DEFAULT_SCHEDULES)
    for job, expr in data.get("schedule", {}).items():
        schedules[job] = expr
    for job in JOBS:
        env = os.environ.get("RECSYS_SCHEDULE_" + job.upper().replace("-", "_"))
        if env is not None:
            schedules[job] = env
    schedules = {job: None if expr in (None, "", "off") else str(expr)
                 for job, expr in schedules.items()}
    scheduler = data.get("scheduler", {})
    timezone = str(scheduler.get("timezone", "UTC"))
    for job, expr in schedules.items():
        if job not in JOBS:
            raise ConfigError(f"schedule for unknown job {job!r}; known: {', '.join(JOBS)}")
        if expr is not None:
            cron_trigger(expr, timezone, job)
    job_options = {str(k): dict(v) for k, v in data.get("jobs", {}).items()}
    for job, options in job_options.items():
        if job not in JOBS:
            raise ConfigError(f"[jobs.{job}]: unknown job; known: {', '.join(JOBS)}")
        check_options(job, options)
    retries = int(_env("RECSYS_JOB_RETRIES", scheduler.get("retries", 2)))
    backoff = float(_env("RECSYS_JOB_BACKOFF_SECONDS", scheduler.get("backoff_seconds", 30)))
    tolerance = float(_env("RECSYS_ACTIVATION_TOLERANCE",
                           data.get("registry", {}).get("activation_tolerance", 0.05)))
    if retries < 0 or backoff < 0 or not 0 <= tolerance < 1:
        raise ConfigError("retries and backoff_seconds must be >= 0 and activation_tolerance "
                          f"in [0, 1); got {retries}, {backoff}, {tolerance}")
    return Settings(schedules, job_options, retries, backoff, tolerance, timezone,
                    str(found) if found else "defaults")


def _env(name: str, default: Any) -> Any:
    value = os.environ.get(name, "").strip()
    return value if value else default


def cron_trigger(expr: str, timezone: str = "UTC", job: str = "") -> CronTrigger:
    """A trigger from a 5-field (or 6-field, seconds first) cron expression."""
    fields = expr.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expr, timezone=timezone)
        if len(fields) == 6:
            second, minute, hour, day, month, dow = fields
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                               day_of_week=dow, timezone=timezone)
    except ValueError as exc:
        raise ConfigError(f"schedule of {job or 'a job'} {expr!r}: {exc}") from None
    raise ConfigError(f"schedule of {job or 'a job'} {expr!r}: expected 5 cron fields "
                      "(minute hour day month weekday) or 6 (seconds first), or 'off'")


def check_options(job: str, options: dict[str, Any]) -> None:
    """Job options must make a valid config of that job (known keys, good values)."""
    try:
        JOBS[job].make_config(options)
    except ValueError as exc:
        raise ConfigError(f"[jobs.{job}]: {exc}") from None
