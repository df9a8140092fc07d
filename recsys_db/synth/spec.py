"""The planted structure (`SyntheticSpec`): catalog, true category migration matrix, per-user
event counts, built from the parameters and seed alone (no events)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_db.synth.arrays import (
    cumulative_ptr,
    largest_remainder,
    row_offset_cdf,
    zipf_weights,
)
from recsys_db.synth.params import (
    CATALOG_STREAM,
    MAX_RELATED,
    RING_OFFSETS,
    USERS_STREAM,
    SynthParams,
    require,
    stream,
)


@dataclass(frozen=True, eq=False)
class SyntheticSpec:
    """The planted structure: catalog, true category migration matrix, per-user counts.

    Arrays use 0-based category indexes ``c`` (category id ``c + 1``); CSR layouts hold, for
    row ``c``, cumulative probabilities offset by ``c`` (``c < cdf <= c + 1``), so one
    ``searchsorted(cdf, c + u)`` samples many rows at once.
    """

    params: SynthParams
    category_popularity: np.ndarray  # (C,) initial and jump distribution
    category_item_ptr: np.ndarray  # (C+1,) slot range of each category
    slot_item: np.ndarray  # (M,) item id of each slot, slots grouped by category
    slot_cdf: np.ndarray  # (M,) row-offset cumulative in-category popularity
    related_ptr: np.ndarray  # (C+1,)
    related_target: np.ndarray  # (nnz,) 0-based category index
    related_weight: np.ndarray  # (nnz,) W[i, j], rows sum to 1
    related_cdf: np.ndarray  # (nnz,) row-offset cumulative of related_weight
    user_event_counts: np.ndarray  # (N,) events of user id u at index u - 1

    @property
    def n_categories(self) -> int:
        return len(self.category_popularity)

    @property
    def category_ids(self) -> np.ndarray:
        """Category ids ``1..C``, aligned with `next_category_probs`."""
        return np.arange(1, self.n_categories + 1, dtype=np.int64)

    @property
    def item_category(self) -> np.ndarray:
        """(M + 1,) category id of each item id (index 0 unused, holds 0)."""
        sizes = np.diff(self.category_item_ptr)
        out = np.zeros(self.params.items + 1, dtype=np.int64)
        out[self.slot_item] = np.repeat(self.category_ids, sizes)
        return out

    @property
    def stay_probability(self) -> float:
        """Probability that an event keeps the category before jumps: ``r + (1 - r) s``."""
        p = self.params
        return p.review + (1.0 - p.review) * p.stay

    def related_categories(self, category_id: int | str) -> dict[str, float]:
        """The TRUE migration row ``W[i]``: related category id -> weight (sums to 1)."""
        i = self._index(category_id)
        lo, hi = self.related_ptr[i], self.related_ptr[i + 1]
        targets = self.related_target[lo:hi] + 1
        return {str(t): float(w) for t, w in zip(targets, self.related_weight[lo:hi], strict=True)}

    def next_category_probs(self, category_id: int | str) -> np.ndarray:
        """Exact P(next event's category | current category) aligned with `category_ids`."""
        i = self._index(category_id)
        leave = 1.0 - self.stay_probability
        probs = leave * self.params.jump * self.category_popularity
        lo, hi = self.related_ptr[i], self.related_ptr[i + 1]
        probs[self.related_target[lo:hi]] += (
            leave * (1.0 - self.params.jump) * self.related_weight[lo:hi]
        )
        probs[i] += self.stay_probability
        return probs

    def next_category_distribution(self, category_id: int | str) -> dict[str, float]:
        """`next_category_probs` as ``{category_id: probability}`` over non-zero entries."""
        probs = self.next_category_probs(category_id)
        nonzero = np.flatnonzero(probs)
        return {str(c + 1): float(probs[c]) for c in nonzero}

    def _index(self, category_id: int | str) -> int:
        i = int(category_id) - 1
        if not 0 <= i < self.n_categories:
            raise ValueError(f"unknown category id {category_id!r}")
        return i

def make_spec(users: int, items: int, events: int, seed: int = 0, **options: Any) -> SyntheticSpec:
    """Build the planted structure from the parameters and seed alone (no events)."""
    params = SynthParams(users=users, items=items, events=events, seed=seed, **options)
    return spec_from_params(params)


def spec_from_params(params: SynthParams) -> SyntheticSpec:
    params.validate()
    rng = stream(params.seed, CATALOG_STREAM)
    n_cat = params.categories
    popularity = zipf_weights(rng.permutation(n_cat) + 1, params.category_zipf)
    popularity /= popularity.sum()
    sizes = 1 + largest_remainder(
        params.items - n_cat, rng.lognormal(0.0, params.category_size_sigma, n_cat)
    )
    item_ptr = cumulative_ptr(sizes)
    slot_item = rng.permutation(params.items).astype(np.int64) + 1
    ranks = np.arange(params.items) - np.repeat(item_ptr[:-1], sizes) + 1
    slot_cdf = row_offset_cdf(zipf_weights(ranks, params.item_zipf), item_ptr)
    rel_ptr, rel_target, rel_weight = _related_structure(rng, params, popularity)
    return SyntheticSpec(
        params=params,
        category_popularity=popularity,
        category_item_ptr=item_ptr,
        slot_item=slot_item,
        slot_cdf=slot_cdf,
        related_ptr=rel_ptr,
        related_target=rel_target,
        related_weight=rel_weight,
        related_cdf=row_offset_cdf(rel_weight, rel_ptr),
        user_event_counts=_user_event_counts(params),
    )

def _related_structure(
    rng: np.random.Generator, params: SynthParams, popularity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (ptr, target, weight) of the related-category rows, rows normalised."""
    n_cat = len(popularity)
    ring = rng.permutation(n_cat)
    position = np.empty(n_cat, dtype=np.int64)
    position[ring] = np.arange(n_cat)
    if n_cat >= len(RING_OFFSETS) + 2:
        offsets = np.empty((n_cat, MAX_RELATED), dtype=np.int64)
        offsets[:, : len(RING_OFFSETS)] = RING_OFFSETS
        offsets[:, -1] = rng.integers(3, n_cat - 2, size=n_cat)  # not self, not +-1, +-2
        candidates = ring[(position[:, None] + offsets) % n_cat]
        counts = rng.integers(params.related_min, params.related_max + 1, size=n_cat)
    else:  # tiny catalogs: every other category is related
        candidates = np.array([[j for j in range(n_cat) if j != i] for i in range(n_cat)])
        counts = np.full(n_cat, n_cat - 1)
    noise = rng.gamma(2.0, 1.0, size=candidates.shape)
    mask = np.arange(candidates.shape[1]) < counts[:, None]
    target = candidates[mask].astype(np.int64)
    weight = noise[mask] * popularity[target] ** params.related_pop_power
    ptr = cumulative_ptr(counts)
    weight /= np.repeat(np.add.reduceat(weight, ptr[:-1]), counts)
    return ptr, target, weight


def _user_event_counts(params: SynthParams) -> np.ndarray:
    rng = stream(params.seed, USERS_STREAM)
    activity = rng.lognormal(0.0, params.activity_sigma, params.users)
    extra = params.events - params.min_user_events * params.users
    counts = params.min_user_events + largest_remainder(extra, activity)
    require(
        int(counts.max()) <= params.window_s,
        "a user would have more events than seconds in the window: add users or days",
    )
    return counts


def params_dict(spec: SyntheticSpec) -> dict[str, Any]:
    """The parameters of ``spec`` as a plain dict (e.g. to record beside a dataset)."""
    return dataclasses.asdict(spec.params)
