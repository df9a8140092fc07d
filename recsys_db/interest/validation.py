"""Held-out validation of the interest encoder: each user's last event is the target.

`validation_split` holds out each user's last event (users with 3 or more events) and builds the
validation targets; `fit_on_log` trains an encoder on the rest, early-stopping on them (on
`config.workers` processes, or the ranks torchrun started: distributed.py). Used by
the train-interest trainer (interest/trainer.py), the tuner (interest/tune.py) and the ranker's
as-of encoder (ranker/train.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys_db.interest import distributed
from recsys_db.interest.features import Vocab, log_steps
from recsys_db.interest.train import (
    BatchCallback,
    EpochCallback,
    TrainConfig,
    TrainResult,
    Validation,
    build_vocabs,
    item_categories,
    train,
)
from recsys_db.sequences import EventLog


def holdout_last(log: EventLog) -> tuple[EventLog, np.ndarray]:
    """(log without each user's last event, mask of the held-out last events) for users with
    at least 3 events; shorter users keep all their events in training."""
    n = np.diff(log.offsets)
    pos = np.arange(len(log)) - np.repeat(log.offsets[:-1], n)
    remaining = np.repeat(n, n) - pos  # 1 for the last event of a user
    held = (remaining == 1) & (np.repeat(n, n) >= 3)
    return log.take(~held), held


def fit_on_log(log: EventLog, config: TrainConfig, *, checkpoint_dir: Path | None = None,
               on_epoch: EpochCallback | None = None, on_batch: BatchCallback | None = None,
               catalog: EventLog | None = None) -> tuple[TrainResult, Validation | None]:
    """Train an encoder on `log`, early-stopping on each user's held-out last event; returns
    the result and the validation set it used (None when no user has 3 events).

    `catalog`: a larger log that `log` samples users of; the model then has a vector for each
    of its items (with its category), not only for the items of the sample."""
    train_log, items, categories, valid = validation_split(log, catalog,
                                                           config.max_valid_users, config.seed)
    item_category = None if catalog is None else item_categories(catalog, items, categories)
    if config.workers > 1 or distributed.torchrun_launch() is not None:
        result = distributed.fit(train_log, config, valid, items=items,
                                 categories=categories, checkpoint_dir=checkpoint_dir,
                                 on_epoch=on_epoch, on_batch=on_batch,
                                 item_category=item_category)
        return result, valid
    result = train(train_log, config, valid, items=items, categories=categories,
                   checkpoint_dir=checkpoint_dir, on_epoch=on_epoch, on_batch=on_batch,
                   item_category=item_category)
    return result, valid


def validation_split(log: EventLog, catalog: EventLog | None = None, max_users: int = 0,
                     seed: int = 0) -> tuple[EventLog, Vocab, Vocab, Validation | None]:
    """(log without each user's last event, item and category vocabularies of the whole log
    - of `catalog` when given -, the held-out last events as validation targets; None when no
    user has 3 events). `max_users` (0: all): validate on that many of those users, drawn at
    random with `seed` - every one of them still trains on all but their last event."""
    train_log, held = holdout_last(log)
    items, categories = build_vocabs(log if catalog is None else catalog)
    valid = None
    if held.any():
        valid = Validation(log_steps(train_log, items, categories), train_log.offsets,
                           items.index(log.item[held]), categories.index(log.category[held]))
        valid = _only_users_with_targets(train_log, log, held, valid, max_users, seed)
    return train_log, items, categories, valid


def _only_users_with_targets(train_log: EventLog, log: EventLog, held: np.ndarray,
                             valid: Validation, max_users: int = 0, seed: int = 0
                             ) -> Validation:
    """Keep validation histories of users that have a held-out event (same user order), or
    `max_users` of them drawn at random (0: all)."""
    has_target = np.isin(train_log.users, log.user[held])
    n_targets = int(has_target.sum())
    if 0 < max_users < n_targets:
        rng = np.random.default_rng([seed, n_targets])
        pick = np.sort(rng.choice(n_targets, max_users, replace=False))
        valid = Validation(valid.steps, valid.offsets, valid.target_item[pick],
                           valid.target_category[pick])
        chosen = np.zeros(n_targets, dtype=bool)
        chosen[pick] = True
        has_target[has_target] = chosen
    starts, ends = train_log.offsets[:-1][has_target], train_log.offsets[1:][has_target]
    idx = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
    steps = type(valid.steps)(*(getattr(valid.steps, f)[idx]
                                for f in ("item", "category", "behavior", "gap")))
    offsets = np.r_[0, np.cumsum(ends - starts)].astype(np.int64)
    return Validation(steps, offsets, valid.target_item, valid.target_category)
