"""The interest trainer: events -> trained encoder -> a new version, promoted if not worse.

Validation for early stopping holds out each user's last event (trained on the rest, see
validation.py); the stored user states are then computed over every event, so they include the
latest behavior. The version goes through the registry's lifecycle: written complete and
'ready' in one transaction (store.write_version), then promoted with the caller's tolerance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import psycopg

from recsys_db.interest import store
from recsys_db.interest.features import log_steps
from recsys_db.interest.states import encode_histories
from recsys_db.interest.train import BatchCallback, EpochCallback
from recsys_db.interest.train_config import TrainConfig
from recsys_db.interest.validation import fit_on_log
from recsys_db.params import Params
from recsys_db.registry import DEFAULT_TOLERANCE, promote
from recsys_db.sequences import EventLog, load_event_log

TrialCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class InterestJobConfig(Params):
    """Options of the train-interest job: the training settings plus an optional search
    budget. As params it is flat: TrainConfig's fields and `tune_minutes`."""

    train: TrainConfig = field(default_factory=TrainConfig)
    tune_minutes: float | None = None

    def __post_init__(self) -> None:
        if self.tune_minutes is not None and self.train.workers > 1:
            raise ValueError("tune_minutes runs its trials in one process: set workers = 1 "
                             "to tune, or leave tune_minutes out to train on several")
        if self.tune_minutes is not None:
            from recsys_db.interest.tune import check_minutes

            try:
                object.__setattr__(self, "tune_minutes", check_minutes(self.tune_minutes))
            except ValueError as exc:
                raise ValueError(f"tune_minutes: {exc}") from None

    def to_params(self) -> dict[str, Any]:
        extra = {} if self.tune_minutes is None else {"tune_minutes": self.tune_minutes}
        return {**self.train.to_params(), **extra}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        unknown = set(params) - cls.option_names()
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} for train-interest; known: "
                             f"{', '.join(sorted(cls.option_names()))}")
        rest = dict(params)
        tune_minutes = None
        if "tune_minutes" in rest:  # given, it must be a budget (None is not one)
            from recsys_db.interest.tune import check_minutes

            try:
                tune_minutes = check_minutes(rest.pop("tune_minutes"))
            except ValueError as exc:
                raise ValueError(f"tune_minutes: {exc}") from None
        return cls(TrainConfig.from_params(rest), tune_minutes)

    @classmethod
    def option_names(cls) -> set[str]:
        return TrainConfig.option_names() | {"tune_minutes"}


@dataclass(frozen=True)
class TrainProgress:
    """Progress callbacks of a training run (kept apart from its config)."""

    on_epoch: EpochCallback | None = None
    on_batch: BatchCallback | None = None
    on_trial: TrialCallback | None = None


def remove_checkpoints(checkpoint_dir: Path) -> int:
    """Delete the epoch checkpoints in `checkpoint_dir` (this run's, and any a dead run left
    for data that has changed since, which nothing would resume from); returns how many.
    Called after a successful run, under the job's lock, so no other training writes there."""
    removed = 0
    for path in (*checkpoint_dir.glob("interest-*.pt"), *checkpoint_dir.glob("interest-*.tmp")):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def user_states_for(loaded_model: Any, items: Any, categories: Any, log: EventLog
                    ) -> store.UserStateRows:
    steps = log_steps(log, items, categories)
    enc = encode_histories(loaded_model, steps, log.offsets)
    last = log.offsets[1:] - 1
    return store.state_rows(loaded_model, items, categories, log.users, enc,
                            log.event_id[last], log.ts[last], np.diff(log.offsets))


def train_interest(conn: psycopg.Connection, config: TrainConfig, *,
                   tolerance: float = DEFAULT_TOLERANCE, tune_minutes: float | None = None,
                   progress: TrainProgress | None = None, checkpoint_dir: Path | None = None,
                   activate: bool = True, job_run_id: int | None = None) -> dict[str, Any]:
    """Train on all events in the database, write a version and promote it (activated unless
    its validation score is worse than the active version's by more than `tolerance`).

    With `tune_minutes`, first search the hyperparameters for that long on the validation
    targets (see `tune.py`); the version is the best trial's model, its params the chosen
    settings, and the metrics' `tuning` lists the trials."""
    t0 = time.perf_counter()
    progress = progress or TrainProgress()
    if tune_minutes is not None:
        from recsys_db.interest.tune import check_minutes

        tune_minutes = check_minutes(tune_minutes)  # before reading any event
    log = load_event_log(conn)
    # End the read's transaction before training: a snapshot held for the whole run would hold
    # back vacuum of every table (and, through hot_standby_feedback, on the primary of a
    # replica) for as long as training takes.
    conn.commit()
    if len(log) == 0:
        raise ValueError("no events: load some with `recsys-db ingest` first")
    tuning = None
    if tune_minutes is None:
        result, valid = fit_on_log(log, config, checkpoint_dir=checkpoint_dir,
                                   on_epoch=progress.on_epoch, on_batch=progress.on_batch)
    else:
        from recsys_db.interest.tune import tune_on_log

        search = tune_on_log(log, config, tune_minutes, on_epoch=progress.on_epoch,
                             on_batch=progress.on_batch, on_trial=progress.on_trial)
        result, valid, config, tuning = search.result, search.valid, search.config, search.summary
    items, categories = result.items, result.categories
    states = user_states_for(result.model, items, categories, log)
    metrics = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
               "valid_score": result.best_metric, "history": result.history,
               "events": len(log), "users": log.n_users, "items": len(items),
               "train_events_per_s": round(result.events_per_s),
               "resumed_from_epoch": result.resumed_from}
    if result.history and valid is not None:
        best = result.history[result.best_epoch - 1]
        metrics.update({k: v for k, v in best.items() if k.startswith("valid_")})
    if tuning is not None:
        metrics["tuning"] = tuning
    version = store.write_version(conn, result.model, items, categories, states,
                                  config.to_params(), metrics, job_run_id)
    promotion = promote(conn, version, tolerance) if activate else None
    store.refresh_transitions(conn)
    conn.commit()
    if checkpoint_dir is not None:  # the version is stored: nothing will resume from them
        metrics["checkpoints_removed"] = remove_checkpoints(checkpoint_dir)
    metrics.update({"version_id": version,
                    "activated": bool(promotion and promotion.activated),
                    "activation": promotion.reason if promotion else "not requested",
                    "seconds": round(time.perf_counter() - t0, 1), "rows_read": len(log)})
    return metrics
