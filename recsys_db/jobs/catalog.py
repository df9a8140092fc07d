"""The jobs recsys-db runs: name, description, typed config, and what a run does.

A job's run function gets a `JobContext` (work connection, run id, the job's config, the
activation tolerance, progress callbacks) and returns its metrics. Configs are dataclasses with
`from_params` (recsys_db/params.py); the trainers they call are imported on first use, so
listing jobs or reading settings does not load torch or LightGBM.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from recsys_db.params import Params


@dataclass(frozen=True)
class JobContext:
    """What one attempt of a job works with."""

    conn: psycopg.Connection
    run_id: int
    config: Any  # an instance of the job's config type; None for jobs without options
    tolerance: float  # activation tolerance of the versions the job promotes
    progress: Any = None  # job-specific progress callbacks (train-interest: TrainProgress)
    now: datetime | None = None  # the runner's clock when one is injected (None: real time)


JobFn = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: JobFn
    config_ref: str | None = None  # "module:Class", the job's config dataclass

    @property
    def config_type(self) -> type[Params] | None:
        """The config dataclass (imported on first use: torch loads only when needed)."""
        if self.config_ref is None:
            return None
        module, _, cls = self.config_ref.partition(":")
        return getattr(importlib.import_module(module), cls)

    def make_config(self, options: Mapping[str, Any] | None = None) -> Any:
        """The job's config from flat `options` (settings file, CLI flags); ValueError for an
        unknown option or a bad value. None for a job without options (then none may be
        given)."""
        config_type = self.config_type
        if config_type is None:
            if options:
                raise ValueError(f"unknown option(s) {sorted(options)}; known: none")
            return None
        return config_type.from_params(dict(options or {}))

    def option_names(self) -> set[str]:
        config_type = self.config_type
        return set() if config_type is None else config_type.option_names()


def _train_interest(ctx: JobContext) -> dict[str, Any]:
    from recsys_db.config import checkpoint_dir
    from recsys_db.interest.trainer import train_interest

    return train_interest(ctx.conn, ctx.config.train, tolerance=ctx.tolerance,
                          tune_minutes=ctx.config.tune_minutes, progress=ctx.progress,
                          checkpoint_dir=checkpoint_dir(), job_run_id=ctx.run_id)


def _refresh_states(ctx: JobContext) -> dict[str, Any]:
    from recsys_db.interest.live import refresh_states

    stats = refresh_states(ctx.conn)
    return {**asdict(stats), "rows_read": stats.events}


def _train_cf(ctx: JobContext) -> dict[str, Any]:
    from recsys_db.cf import train_cf

    return train_cf(ctx.conn, ctx.config, tolerance=ctx.tolerance, job_run_id=ctx.run_id)


def _train_ranker(ctx: JobContext) -> dict[str, Any]:
    from recsys_db.ranker.train import train_ranker

    return train_ranker(ctx.conn, ctx.config, tolerance=ctx.tolerance, job_run_id=ctx.run_id)


def _refresh_transitions(ctx: JobContext) -> dict[str, Any]:
    from recsys_db.interest.store import refresh_transitions

    rows = refresh_transitions(ctx.conn)
    ctx.conn.commit()
    return {"transitions": rows}


def _maintenance(ctx: JobContext) -> dict[str, Any]:
    from recsys_db.jobs.maintenance import maintain

    return maintain(ctx.conn, ctx.config, now=ctx.now)


JOBS: dict[str, Job] = {j.name: j for j in (
    Job("train-interest", "train the interest encoder; promote the new version",
        _train_interest, "recsys_db.interest.trainer:InterestJobConfig"),
    Job("refresh-states", "advance user states through new events (no retraining)",
        _refresh_states),
    Job("train-cf", "item-item co-occurrence neighbours and item popularity, as a new version",
        _train_cf, "recsys_db.cf:CFConfig"),
    Job("train-ranker", "LightGBM lambdarank re-ranker compiled into SQL; promote it",
        _train_ranker, "recsys_db.ranker.train:RankerConfig"),
    Job("refresh-transitions", "recompute recsys.category_transitions", _refresh_transitions),
    Job("maintenance", "bounded storage: gc old versions, trim run history, drop old events",
        _maintenance, "recsys_db.jobs.maintenance:MaintenanceConfig"),
)}
