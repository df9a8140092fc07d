"""The candidate sets that evaluation ranks over: every item and every known category.

Built from the FULL log (not only the training part), so a test target that never occurs in
training is still a candidate; methods simply give it a low score. Score matrices returned by
methods have their columns aligned with `Catalog.items` (target "item") or
`Catalog.categories` (target "category").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_db.sequences import EventLog

TARGETS = ("item", "category")


@dataclass(frozen=True)
class Catalog:
    """Sorted item keys, sorted known category keys (0 = unknown is never a candidate)."""

    items: np.ndarray  # int64, sorted unique item keys
    categories: np.ndarray  # int64, sorted unique category keys > 0
    item_category: np.ndarray  # int64 category key of each catalog item (majority over events)

    @classmethod
    def from_log(cls, log: EventLog) -> Catalog:
        """All items and known categories of `log`; an item's category is its most frequent one
        (ties: the smallest key), 0 when it was only ever seen with unknown category."""
        items = np.unique(log.item).astype(np.int64)
        categories = np.unique(log.category).astype(np.int64)
        categories = categories[categories > 0]
        item_category = np.zeros(len(items), dtype=np.int64)
        known = log.category > 0
        if known.any():  # one int64 key per (item, category) pair: item << 32 | category
            pair_keys, counts = np.unique(
                (log.item[known].astype(np.int64) << 32) | log.category[known].astype(np.int64),
                return_counts=True)
            pair_item, pair_cat = pair_keys >> 32, pair_keys & 0xFFFFFFFF
            order = np.lexsort((pair_cat, -counts, pair_item))  # per item: most frequent first
            pair_item, pair_cat = pair_item[order], pair_cat[order]
            first = np.r_[True, pair_item[1:] != pair_item[:-1]]
            item_category[np.searchsorted(items, pair_item[first])] = pair_cat[first]
        return cls(items, categories, item_category)

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    @property
    def n_categories(self) -> int:
        return int(self.categories.shape[0])

    def size(self, target: str) -> int:
        """Number of candidates (score-matrix columns) for `target`."""
        return self.n_items if _check_target(target) == "item" else self.n_categories

    def keys(self, target: str) -> np.ndarray:
        """Candidate keys for `target` (the meaning of each score column)."""
        return self.items if _check_target(target) == "item" else self.categories

    def item_index(self, keys: np.ndarray) -> np.ndarray:
        """Column of each item key; -1 for keys not in the catalog."""
        return _index(self.items, keys)

    def category_index(self, keys: np.ndarray) -> np.ndarray:
        """Column of each category key; -1 for 0 (unknown) and keys not in the catalog."""
        return _index(self.categories, keys)

    def index(self, target: str, keys: np.ndarray) -> np.ndarray:
        """`item_index` or `category_index`, by `target`."""
        if _check_target(target) == "item":
            return self.item_index(keys)
        return self.category_index(keys)


def _index(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64)
    if not len(sorted_keys):
        return np.full(keys.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_keys, keys)
    pos_clipped = np.minimum(pos, len(sorted_keys) - 1)
    found = sorted_keys[pos_clipped] == keys
    return np.where(found, pos_clipped, -1).astype(np.int64)


def _check_target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r} (expected one of {TARGETS})")
    return target
