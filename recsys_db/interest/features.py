"""Step features of a behavior sequence - the one code path for training and live updates.

A step is (item, category, behavior, time-gap bucket). Items and categories are mapped to model
indices by a `Vocab` (0 = unknown/padding); the gap since the user's previous event is bucketed
on a log2 scale (bucket 0 = first event of the sequence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recsys_db.sequences import EventLog

GAP_BUCKETS = 24
MAX_BEHAVIORS = 16


def bucket_gaps(gaps: np.ndarray) -> np.ndarray:
    """Bucket 1 + floor(log2(1 + seconds)), capped; bucket 0 is reserved for "no previous"."""
    seconds = np.clip(np.asarray(gaps, dtype=np.float64), 0, None)
    return np.minimum(1 + np.floor(np.log2(1.0 + seconds)).astype(np.int64), GAP_BUCKETS - 1)


def gap_buckets(ts: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Bucket of the gap to the previous event; `first` marks each sequence's first event."""
    buckets = bucket_gaps(np.diff(ts, prepend=ts[:1]))
    buckets[first] = 0
    return buckets


@dataclass
class Vocab:
    """Sorted external keys; index i+1 is the model's id of keys[i], 0 means unknown."""

    keys: np.ndarray

    def index(self, values: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.keys, values)
        pos = np.minimum(pos, len(self.keys) - 1) if len(self.keys) else pos
        found = len(self.keys) > 0
        hit = (self.keys[pos] == values) if found else np.zeros(len(values), bool)
        return np.where(hit, pos + 1, 0).astype(np.int64)

    def __len__(self) -> int:
        return int(len(self.keys))


@dataclass
class Steps:
    """Model inputs of events in sequence order (one row per event)."""

    item: np.ndarray  # int64 model item index
    category: np.ndarray  # int64 model category index
    behavior: np.ndarray  # int64 behavior key clipped to MAX_BEHAVIORS - 1
    gap: np.ndarray  # int64 gap bucket


def make_steps(items: Vocab, categories: Vocab, item_keys: np.ndarray, category_keys: np.ndarray,
               behavior_keys: np.ndarray, ts: np.ndarray, first: np.ndarray) -> Steps:
    """Steps of events given in sequence order; `first` marks where each sequence starts."""
    return Steps(
        item=items.index(item_keys),
        category=categories.index(category_keys),
        behavior=np.clip(behavior_keys.astype(np.int64), 0, MAX_BEHAVIORS - 1),
        gap=gap_buckets(ts.astype(np.int64), first),
    )


def sequence_starts(offsets: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the first event of each sequence, from CSR offsets."""
    first = np.zeros(n, dtype=bool)
    starts = offsets[:-1][offsets[:-1] < n]
    first[starts] = True
    return first


def log_steps(log: EventLog, items: Vocab, categories: Vocab) -> Steps:
    """Steps of every event of a log, each user's events one sequence."""
    first = sequence_starts(log.offsets, len(log))
    return make_steps(items, categories, log.item, log.category, log.behavior, log.ts, first)
