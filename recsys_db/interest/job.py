"""The train-interest job: events -> trained encoder -> a new version, promoted if not worse.

Validation for early stopping holds out each user's last event (trained on the rest); the
stored user states are then computed over every event, so they include the latest behavior.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from recsys_db.interest import store
from recsys_db.interest.features import Vocab, log_steps
from recsys_db.interest.states import encode_histories
from recsys_db.interest.train import (
    BatchCallback,
    EpochCallback,
    TrainConfig,
    TrainResult,
    Validation,
    build_vocabs,
    train,
)
from recsys_db.registry import promote
from recsys_db.sequences import EventLog, load_event_log


def holdout_last(log: EventLog) -> tuple[EventLog, np.ndarray]:
    """(log without each user's last event, mask of the held-out last events) for users with
    at least 3 events; shorter users keep all their events in training."""
    n = np.diff(log.offsets)
    pos = np.arange(len(log)) - np.repeat(log.offsets[:-1], n)
    remaining = np.repeat(n, n) - pos  # 1 for the last event of a user
    held = (remaining == 1) & (np.repeat(n, n) >= 3)
    return log.take(~held), held


def user_states_for(loaded_model: Any, items: Any, categories: Any, log: EventLog
                    ) -> store.UserStateRows:
    steps = log_steps(log, items, categories)
    enc = encode_histories(loaded_model, steps, log.offsets)
    last = log.offsets[1:] - 1
    return store.state_rows(loaded_model, items, categories, log.users, enc,
                            log.event_id[last], log.ts[last], np.diff(log.offsets))


def train_interest(conn: psycopg.Connection, config: TrainConfig, *,
                   checkpoint_dir: Path | None = None, activate: bool = True,
                   job_run_id: int | None = None, on_epoch: EpochCallback | None = None,
                   on_batch: BatchCallback | None = None, tune_minutes: float | None = None,
                   on_trial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train on all events in the database, write a version and promote it (activated unless
    its validation score is worse than the active version's beyond the tolerance).

    With `tune_minutes`, first search the hyperparameters for that long on the validation
    targets (see `tune.py`); the version is the best trial's model, its params the chosen
    settings, and the metrics' `tuning` lists the trials."""
    t0 = time.perf_counter()
    if tune_minutes is not None:
        from recsys_db.interest.tune import check_minutes

        tune_minutes = check_minutes(tune_minutes)  # before reading any event
    log = load_event_log(conn)
    if len(log) == 0:
        raise ValueError("no events: load some with `recsys-db ingest` first")
    tuning = None
    if tune_minutes is None:
        result, valid = fit_on_log(log, config, checkpoint_dir=checkpoint_dir,
                                   on_epoch=on_epoch, on_batch=on_batch)
    else:
        from recsys_db.interest.tune import tune_on_log

        search = tune_on_log(log, config, tune_minutes, on_epoch=on_epoch, on_batch=on_batch,
                             on_trial=on_trial)
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
                                  dataclasses.asdict(config), metrics, job_run_id)
    promotion = promote(conn, version) if activate else None
    conn.execute("SELECT recsys.refresh_category_transitions()")
    conn.commit()
    metrics.update({"version_id": version,
                    "activated": bool(promotion and promotion.activated),
                    "activation": promotion.reason if promotion else "not requested",
                    "seconds": round(time.perf_counter() - t0, 1), "rows_read": len(log)})
    return metrics


def fit_on_log(log: EventLog, config: TrainConfig, *, checkpoint_dir: Path | None = None,
               on_epoch: EpochCallback | None = None, on_batch: BatchCallback | None = None
               ) -> tuple[TrainResult, Validation | None]:
    """Train an encoder on `log`, early-stopping on each user's held-out last event; returns
    the result and the validation set it used (None when no user has 3 events)."""
    train_log, items, categories, valid = validation_split(log)
    result = train(train_log, config, valid, items=items, categories=categories,
                   checkpoint_dir=checkpoint_dir, on_epoch=on_epoch, on_batch=on_batch)
    return result, valid


def validation_split(log: EventLog) -> tuple[EventLog, Vocab, Vocab, Validation | None]:
    """(log without each user's last event, item and category vocabularies of the whole log,
    the held-out last events as validation targets; None when no user has 3 events)."""
    train_log, held = holdout_last(log)
    items, categories = build_vocabs(log)
    valid = None
    if held.any():
        valid = Validation(log_steps(train_log, items, categories), train_log.offsets,
                           items.index(log.item[held]), categories.index(log.category[held]))
        valid = _only_users_with_targets(train_log, log, held, valid)
    return train_log, items, categories, valid


def _only_users_with_targets(train_log: EventLog, log: EventLog, held: np.ndarray,
                             valid: Validation) -> Validation:
    """Keep validation histories of users that have a held-out event (same user order)."""
    has_target = np.isin(train_log.users, log.user[held])
    starts, ends = train_log.offsets[:-1][has_target], train_log.offsets[1:][has_target]
    idx = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
    steps = type(valid.steps)(*(getattr(valid.steps, f)[idx]
                                for f in ("item", "category", "behavior", "gap")))
    offsets = np.r_[0, np.cumsum(ends - starts)].astype(np.int64)
    return Validation(steps, offsets, valid.target_item, valid.target_category)
