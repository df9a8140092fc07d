"""The train-interest job: events -> trained encoder -> a new version, promoted if not worse.

Validation for early stopping holds out each user's last event (trained on the rest); the
stored user states are then computed over every event, so they include the latest behavior.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from recsys_db.interest import store
from recsys_db.interest.features import log_steps
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
                   on_batch: BatchCallback | None = None) -> dict[str, Any]:
    """Train on all events in the database, write a version and promote it (activated unless
    its validation score is worse than the active version's beyond the tolerance)."""
    t0 = time.perf_counter()
    log = load_event_log(conn)
    if len(log) == 0:
        raise ValueError("no events: load some with `recsys-db ingest` first")
    result, valid = fit_on_log(log, config, checkpoint_dir=checkpoint_dir, on_epoch=on_epoch,
                               on_batch=on_batch)
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
    train_log, held = holdout_last(log)
    items, categories = build_vocabs(log)
    valid = None
    if held.any():
        valid = Validation(log_steps(train_log, items, categories), train_log.offsets,
                           items.index(log.item[held]), categories.index(log.category[held]))
        valid = _only_users_with_targets(train_log, log, held, valid)
    result = train(train_log, config, valid, items=items, categories=categories,
                   checkpoint_dir=checkpoint_dir, on_epoch=on_epoch, on_batch=on_batch)
    return result, valid


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
