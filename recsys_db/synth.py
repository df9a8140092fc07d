"""Deterministic synthetic e-commerce event log in Taobao UserBehavior CSV format.

Output: a header ``user_id,item_id,category_id,behavior,ts`` then one row per event, e.g.
``17,1234,88,pv,1511544070``. Ids are small positive integers (users ``1..N``, items
``1..M``, categories ``1..C``); ``ts`` is integer unix seconds (UTC); ``behavior`` is one of
``pv``/``cart``/``fav``/``buy``. Rows are ordered by user, then time; a user's timestamps are
strictly increasing, so file order equals event order. A fixed seed (and the same numpy
version) gives a byte-identical file.

The process (``r`` = ``review``, ``s`` = ``stay``, ``J`` = ``jump``):

Catalog (built from the parameters and seed alone, see `make_spec`):
  * ``C`` categories (default ``max(10, M // 40)``); category sizes are ``1 +`` a
    largest-remainder split of ``M - C`` items proportional to ``LogNormal(0, size_sigma)``.
  * category popularity ``pop[c] ∝ rank_c ** -category_zipf`` (ranks a random permutation).
  * item popularity in its category ``∝ rank ** -item_zipf`` (item ids randomly shuffled).
  * related categories: categories sit on a ring in random order; category ``i`` relates to
    its first ``k_i ~ U{related_min..related_max}`` candidates among ring offsets
    ``+1, -1, +2, -2`` and one random long-range link, with weights
    ``w_ij ∝ Gamma(2, 1) * pop[j] ** related_pop_power`` normalised per row: ``W[i, j]``.

Users: event counts ``n_u = min_user_events +`` a largest-remainder split of the rest of
``events`` proportional to ``LogNormal(0, activity_sigma)`` (total exact, heavy-tailed).

Events of a user (a Markov chain over categories, the planted signal):
  * the first event's category is drawn from ``pop``;
  * each later event, with uniform ``u``: ``u < r`` re-views an item seen in the last
    ``review_window`` events of the current same-category run (category kept);
    else with probability ``s`` a fresh item in the same category; else with probability ``J``
    a fresh item of a category drawn from ``pop`` (may be the same one); else a fresh item
    of a related category drawn from ``W[cur]``. Hence exactly::

        P(next = j | cur = i) = (r + (1-r) s) [i = j] + (1-r)(1-s) ((1-J) W[i, j] + J pop[j])

    (`SyntheticSpec.next_category_probs`).
  * fresh items are drawn by in-category popularity.
  * behavior: re-views buy ``review_buy_lift`` times more often; fresh-event shares are set
    so that the overall mix is ``behavior_shares`` (default pv 90 / cart 5 / fav 3 / buy 2).
  * time: within-session gaps ``1 + floor(LogNormal(ln click_gap_median_s, 1.2))`` seconds;
    a new session starts with probability ``1 / session_mean_events`` and waits
    ``1 + floor(LogNormal(ln session_gap_median_s, 1.0))``; a timeline longer than the window
    has its slack (gaps minus 1 s) scaled down; it starts at a uniform offset so that it fits
    in ``[start_ts, start_ts + days * 86400)`` (default 2017-11-25 00:00 UTC, 9 days).

Generation is vectorised with numpy over blocks of users (about ``block_events`` events per
block), each block with its own seeded stream, written as soon as it is formatted, so memory
is bounded by the block, the catalog and the per-user counts, never by ``events``.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

HEADER = "user_id,item_id,category_id,behavior,ts\n"
BEHAVIORS = ("pv", "cart", "fav", "buy")
TAOBAO_START_TS = 1511568000  # 2017-11-25 00:00:00 UTC
SECONDS_PER_DAY = 86_400

_CATALOG_STREAM = 0
_USERS_STREAM = 1
_BLOCK_STREAM = 2
_RING_OFFSETS = (1, -1, 2, -2)
_MAX_RELATED = len(_RING_OFFSETS) + 1

ProgressFn = Callable[[int], Any]


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the generator; with the seed, it defines the output exactly."""

    users: int
    items: int
    events: int
    seed: int = 0
    n_categories: int | None = None
    start_ts: int = TAOBAO_START_TS
    days: int = 9
    stay: float = 0.6
    jump: float = 0.05
    review: float = 0.15
    review_window: int = 5
    item_zipf: float = 1.1
    category_zipf: float = 1.0
    category_size_sigma: float = 1.0
    related_min: int = 3
    related_max: int = 5
    related_pop_power: float = 0.5
    activity_sigma: float = 1.2
    min_user_events: int = 4
    session_mean_events: float = 10.0
    click_gap_median_s: float = 30.0
    session_gap_median_s: float = 3 * 3600.0
    behavior_shares: tuple[float, float, float, float] = (0.90, 0.05, 0.03, 0.02)
    review_buy_lift: float = 5.0
    block_events: int = 1 << 18

    @property
    def categories(self) -> int:
        """The number of categories, with the default ``max(10, items // 40)`` resolved."""
        if self.n_categories is not None:
            return self.n_categories
        return min(self.items, max(10, self.items // 40))

    @property
    def window_s(self) -> int:
        return self.days * SECONDS_PER_DAY

    def validate(self) -> None:
        """Raise ValueError naming the first parameter that is out of range."""
        _require(self.users >= 1, "users must be >= 1")
        _require(self.items >= 2, "items must be >= 2")
        _require(self.min_user_events >= 1, "min_user_events must be >= 1")
        _require(
            self.events >= self.min_user_events * self.users,
            f"events must be >= min_user_events * users = {self.min_user_events * self.users}",
        )
        _require(2 <= self.categories <= self.items, "n_categories must be in [2, items]")
        _require(self.days >= 1, "days must be >= 1")
        _require(self.start_ts >= 0 and self.start_ts + self.window_s < 2**32, "bad start_ts")
        for name in ("stay", "jump", "review"):
            _require(0.0 <= getattr(self, name) < 1.0, f"{name} must be in [0, 1)")
        _require(self.review_window >= 1, "review_window must be >= 1")
        _require(
            1 <= self.related_min <= self.related_max <= _MAX_RELATED,
            f"need 1 <= related_min <= related_max <= {_MAX_RELATED}",
        )
        _require(self.session_mean_events >= 1.0, "session_mean_events must be >= 1")
        _require(self.block_events >= 1, "block_events must be >= 1")
        shares = np.asarray(self.behavior_shares, dtype=float)
        _require(
            shares.shape == (4,) and bool(np.all(shares >= 0)) and abs(shares.sum() - 1) < 1e-9,
            "behavior_shares must be 4 non-negative shares summing to 1",
        )
        _behavior_tables(self)  # raises when the re-view lift is infeasible


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


@dataclass(frozen=True)
class GenerateStats:
    """What `generate` wrote."""

    rows: int
    users: int
    items_used: int
    categories: int
    categories_used: int
    seconds: float


def make_spec(users: int, items: int, events: int, seed: int = 0, **options: Any) -> SyntheticSpec:
    """Build the planted structure from the parameters and seed alone (no events)."""
    params = SynthParams(users=users, items=items, events=events, seed=seed, **options)
    return spec_from_params(params)


def spec_from_params(params: SynthParams) -> SyntheticSpec:
    params.validate()
    rng = _rng(params.seed, _CATALOG_STREAM)
    n_cat = params.categories
    popularity = _zipf_weights(rng.permutation(n_cat) + 1, params.category_zipf)
    popularity /= popularity.sum()
    sizes = 1 + _largest_remainder(
        params.items - n_cat, rng.lognormal(0.0, params.category_size_sigma, n_cat)
    )
    item_ptr = _ptr(sizes)
    slot_item = rng.permutation(params.items).astype(np.int64) + 1
    ranks = np.arange(params.items) - np.repeat(item_ptr[:-1], sizes) + 1
    slot_cdf = _row_offset_cdf(_zipf_weights(ranks, params.item_zipf), item_ptr)
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
        related_cdf=_row_offset_cdf(rel_weight, rel_ptr),
        user_event_counts=_user_event_counts(params),
    )


def generate(
    out: str | os.PathLike[str] | IO[str] | IO[bytes],
    users: int,
    items: int,
    events: int,
    seed: int = 0,
    *,
    progress: ProgressFn | None = None,
    **options: Any,
) -> GenerateStats:
    """Write exactly ``events`` rows (plus header) to a path (``.gz`` gzips) or open stream."""
    spec = make_spec(users, items, events, seed, **options)
    return write_spec(out, spec, progress=progress)


def write_spec(
    out: str | os.PathLike[str] | IO[str] | IO[bytes],
    spec: SyntheticSpec,
    *,
    progress: ProgressFn | None = None,
) -> GenerateStats:
    """Generate the events of ``spec`` block by block and stream them to ``out``."""
    started = time.perf_counter()
    if isinstance(out, str | os.PathLike):
        with _open_path(Path(out)) as handle:
            counters = _write_blocks(handle.write, spec, progress)
    else:
        counters = _write_blocks(_byte_writer(out), spec, progress)
    rows, items_seen, categories_seen = counters
    return GenerateStats(
        rows=rows,
        users=spec.params.users,
        items_used=int(items_seen.sum()),
        categories=spec.n_categories,
        categories_used=int(categories_seen.sum()),
        seconds=time.perf_counter() - started,
    )


@dataclass
class EventBlock:
    """Events of a contiguous range of users, in file order. Ids are 1-based."""

    user_id: np.ndarray
    item_id: np.ndarray
    category_id: np.ndarray
    behavior: np.ndarray  # index into BEHAVIORS
    ts: np.ndarray


def iter_blocks(spec: SyntheticSpec) -> Iterator[EventBlock]:
    """Simulate the events block by block (what `write_spec` writes)."""
    for number, (lo, hi) in enumerate(_user_blocks(spec)):
        yield _simulate_block(spec, lo, hi, _rng(spec.params.seed, _BLOCK_STREAM, number))


# --- catalog ---------------------------------------------------------------------------------


def _related_structure(
    rng: np.random.Generator, params: SynthParams, popularity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (ptr, target, weight) of the related-category rows, rows normalised."""
    n_cat = len(popularity)
    ring = rng.permutation(n_cat)
    position = np.empty(n_cat, dtype=np.int64)
    position[ring] = np.arange(n_cat)
    if n_cat >= len(_RING_OFFSETS) + 2:
        offsets = np.empty((n_cat, _MAX_RELATED), dtype=np.int64)
        offsets[:, : len(_RING_OFFSETS)] = _RING_OFFSETS
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
    ptr = _ptr(counts)
    weight /= np.repeat(np.add.reduceat(weight, ptr[:-1]), counts)
    return ptr, target, weight


def _user_event_counts(params: SynthParams) -> np.ndarray:
    rng = _rng(params.seed, _USERS_STREAM)
    activity = rng.lognormal(0.0, params.activity_sigma, params.users)
    extra = params.events - params.min_user_events * params.users
    counts = params.min_user_events + _largest_remainder(extra, activity)
    _require(
        int(counts.max()) <= params.window_s,
        "a user would have more events than seconds in the window: add users or days",
    )
    return counts


def _zipf_weights(ranks: np.ndarray, exponent: float) -> np.ndarray:
    return np.asarray(ranks, dtype=np.float64) ** -exponent


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total``."""
    expected = total * (weights / weights.sum())
    base = np.floor(expected).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        base[np.argsort(base - expected, kind="stable")[:short]] += 1
    return base


def _ptr(sizes: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    return ptr


def _row_offset_cdf(weights: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Per-row cumulative shares of ``weights``, plus the row index (row ``c``: (c, c+1])."""
    sizes = np.diff(ptr)
    totals = np.add.reduceat(weights, ptr[:-1])
    cumulative = np.cumsum(weights)
    before = np.repeat(cumulative[ptr[:-1]] - weights[ptr[:-1]], sizes)
    rows = np.repeat(np.arange(len(sizes), dtype=np.float64), sizes)
    cdf = rows + (cumulative - before) / np.repeat(totals, sizes)
    cdf[ptr[1:] - 1] = np.arange(1, len(sizes) + 1, dtype=np.float64)
    return cdf


def _sample_rows(cdf: np.ndarray, ptr: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One flat index per (row, uniform) pair, drawn from that row of a row-offset CDF."""
    index = np.searchsorted(cdf, rows + u, side="right")
    return np.minimum(index, ptr[rows + 1] - 1)  # guards rows + u rounding up to rows + 1


# --- events ----------------------------------------------------------------------------------


def _user_blocks(spec: SyntheticSpec) -> Iterator[tuple[int, int]]:
    counts = spec.user_event_counts
    cumulative = np.cumsum(counts)
    lo = 0
    while lo < len(counts):
        base = int(cumulative[lo] - counts[lo])
        hi = int(np.searchsorted(cumulative, base + spec.params.block_events, side="right"))
        hi = max(hi, lo + 1)
        yield lo, hi
        lo = hi


def _simulate_block(spec: SyntheticSpec, lo: int, hi: int, rng: np.random.Generator) -> EventBlock:
    p = spec.params
    counts = spec.user_event_counts[lo:hi]
    n_events = int(counts.sum())
    starts = _ptr(counts)[:-1]
    owner = np.repeat(np.arange(hi - lo), counts)
    step = np.arange(n_events) - starts[owner]
    first = step == 0
    kind_u = rng.random(n_events)
    stay_cut = p.review + (1 - p.review) * p.stay
    jump_cut = stay_cut + (1 - stay_cut) * p.jump
    review = ~first & (kind_u < p.review)
    change = first | (kind_u >= stay_cut)
    anchor = first | (change & (kind_u < jump_cut))  # category drawn from popularity
    category = _simulate_categories(spec, rng, owner, change, anchor, hi - lo)
    item = _pick_items(spec, rng, category, review, first, p.review_window)
    return EventBlock(
        user_id=owner + (lo + 1),
        item_id=item,
        category_id=category + 1,
        behavior=_pick_behaviors(rng, review, p),
        ts=_timestamps(rng, counts, owner, step, first, p),
    )


def _simulate_categories(
    spec: SyntheticSpec,
    rng: np.random.Generator,
    owner: np.ndarray,
    change: np.ndarray,
    anchor: np.ndarray,
    n_users: int,
) -> np.ndarray:
    """0-based category of each event: a Markov chain stepped over category changes only."""
    change_at = np.flatnonzero(change)
    anchored = anchor[change_at]
    changed = np.empty(len(change_at), dtype=np.int64)
    pop_cdf = np.cumsum(spec.category_popularity)
    drawn = np.searchsorted(pop_cdf, rng.random(int(anchored.sum())) * pop_cdf[-1], side="right")
    changed[anchored] = np.minimum(drawn, spec.n_categories - 1)
    moving = ~anchored
    move_u = rng.random(len(change_at))
    per_user = np.bincount(owner[change_at], minlength=n_users)
    lane_order = np.argsort(-per_user, kind="stable")
    lane_len = per_user[lane_order]
    lane_start = _ptr(per_user)[:-1][lane_order]
    active = np.searchsorted(-lane_len, -np.arange(int(lane_len[0])), side="left")
    for t in range(1, int(lane_len[0])):
        at = lane_start[: active[t]] + t
        at = at[moving[at]]
        if at.size:
            changed[at] = spec.related_target[
                _sample_rows(spec.related_cdf, spec.related_ptr, changed[at - 1], move_u[at])
            ]
    return changed[np.cumsum(change) - 1]


def _pick_items(
    spec: SyntheticSpec,
    rng: np.random.Generator,
    category: np.ndarray,
    review: np.ndarray,
    first: np.ndarray,
    window: int,
) -> np.ndarray:
    """Item id per event: fresh by popularity, re-views copy a recent same-run event's item."""
    n_events = len(category)
    index = np.arange(n_events)
    run_start = first.copy()
    run_start[1:] |= category[1:] != category[:-1]
    position_in_run = index - np.maximum.accumulate(np.where(run_start, index, 0))
    fresh = np.flatnonzero(~review)
    slots = _sample_rows(
        spec.slot_cdf, spec.category_item_ptr, category[fresh], rng.random(len(fresh))
    )
    item = np.zeros(n_events, dtype=np.int64)
    item[fresh] = spec.slot_item[slots]
    reviews = np.flatnonzero(review)
    reach = np.minimum(position_in_run[reviews], window)
    source = index.copy()
    source[reviews] = reviews - 1 - (rng.random(len(reviews)) * reach).astype(np.int64)
    while True:  # pointer jumping: follow re-views of re-views to the fresh event
        hop = source[source[reviews]]
        if np.array_equal(hop, source[reviews]):
            break
        source[reviews] = hop
    item[reviews] = item[source[reviews]]
    return item


def _behavior_tables(params: SynthParams) -> np.ndarray:
    """(2, 4) cumulative behavior probabilities: row 0 fresh events, row 1 re-views."""
    shares = np.asarray(params.behavior_shares, dtype=np.float64)
    on_review = shares.copy()
    on_review[3] = min(1.0, shares[3] * params.review_buy_lift)
    on_review[0] = max(0.0, 1.0 - on_review[1:].sum())
    on_review /= on_review.sum()
    r = params.review
    fresh = (shares - r * on_review) / (1.0 - r)
    _require(bool(np.all(fresh >= -1e-12)), "review_buy_lift too high for behavior_shares")
    fresh = np.clip(fresh, 0.0, None)
    return np.cumsum(np.stack([fresh / fresh.sum(), on_review]), axis=1)


def _pick_behaviors(
    rng: np.random.Generator, review: np.ndarray, params: SynthParams
) -> np.ndarray:
    cuts = _behavior_tables(params)[review.astype(np.intp)]
    u = rng.random(len(review))
    return np.minimum((u[:, None] >= cuts[:, :3]).sum(axis=1), 3).astype(np.int64)


def _timestamps(
    rng: np.random.Generator,
    counts: np.ndarray,
    owner: np.ndarray,
    step: np.ndarray,
    first: np.ndarray,
    params: SynthParams,
) -> np.ndarray:
    """Strictly increasing per user, sessions of clicks, all inside the window."""
    n_events = len(owner)
    gaps = rng.lognormal(np.log(params.click_gap_median_s), 1.2, n_events)
    new_session = rng.random(n_events) < 1.0 / params.session_mean_events
    gaps[new_session] = rng.lognormal(
        np.log(params.session_gap_median_s), 1.0, int(new_session.sum())
    )
    slack = np.floor(gaps).astype(np.int64)  # each gap is 1 s + slack
    slack[first] = 0
    slack = np.cumsum(slack)
    starts = _ptr(counts)[:-1]
    slack -= slack[starts][owner]
    last = starts + counts - 1
    room = params.window_s - counts  # largest slack span that still fits
    scale = np.minimum(1.0, room / np.maximum(slack[last], 1))
    offset = step + np.floor(slack * scale[owner]).astype(np.int64)
    span = offset[last]
    begin = np.floor(rng.random(len(counts)) * (params.window_s - span)).astype(np.int64)
    return params.start_ts + begin[owner] + offset


# --- output ----------------------------------------------------------------------------------


def _write_blocks(
    write: Callable[[bytes], Any], spec: SyntheticSpec, progress: ProgressFn | None
) -> tuple[int, np.ndarray, np.ndarray]:
    items_seen = np.zeros(spec.params.items + 1, dtype=bool)
    categories_seen = np.zeros(spec.n_categories + 1, dtype=bool)
    widths = _column_widths(spec.params)
    write(HEADER.encode("ascii"))
    rows = 0
    for block in iter_blocks(spec):
        write(_format_rows(block, widths))
        items_seen[block.item_id] = True
        categories_seen[block.category_id] = True
        rows += len(block.ts)
        if progress is not None:
            progress(rows)
    return rows, items_seen, categories_seen


def _column_widths(params: SynthParams) -> tuple[int, int, int, int]:
    biggest = (params.users, params.items, params.categories, params.start_ts + params.window_s)
    return tuple(len(str(value)) for value in biggest)  # type: ignore[return-value]


_BEHAVIOR_BYTES = np.array([list(b.ljust(4, "\0").encode("ascii")) for b in BEHAVIORS], np.uint8)


def _format_rows(block: EventBlock, widths: tuple[int, int, int, int]) -> bytes:
    """CSV bytes of a block: fixed-width digit matrix, NUL padding squeezed out."""
    user_w, item_w, cat_w, ts_w = widths
    columns = [
        _digits(block.user_id, user_w),
        _digits(block.item_id, item_w),
        _digits(block.category_id, cat_w),
        _BEHAVIOR_BYTES[block.behavior],
        _digits(block.ts, ts_w),
    ]
    width = sum(column.shape[1] for column in columns) + len(columns)
    matrix = np.empty((len(block.ts), width), dtype=np.uint8)
    at = 0
    for number, column in enumerate(columns):
        matrix[:, at : at + column.shape[1]] = column
        at += column.shape[1]
        matrix[:, at] = ord("\n") if number == len(columns) - 1 else ord(",")
        at += 1
    flat = matrix.ravel()
    return flat[flat != 0].tobytes()


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative ints < 2**32, leading zeros as NUL."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.uint32)
    for k in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, np.uint32(10))
        out[:, k] = digit
    out += ord("0")
    for k in range(width - 1):
        out[values < 10 ** (width - 1 - k), k] = 0
    return out


def _open_path(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":  # mtime=0 and no name: the same bytes every run
        raw = open(path, "wb")  # noqa: SIM115 - closed by GzipFile's owner below
        return _GzipCloser(raw)
    return open(path, "wb")  # noqa: SIM115 - returned to a with-block


class _GzipCloser(gzip.GzipFile):
    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _byte_writer(out: IO[str] | IO[bytes]) -> Callable[[bytes], Any]:
    if isinstance(out, io.TextIOBase):
        return lambda data: out.write(data.decode("ascii"))
    return out.write  # type: ignore[return-value]


# --- helpers ---------------------------------------------------------------------------------


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=stream))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def params_dict(spec: SyntheticSpec) -> dict[str, Any]:
    """The parameters of ``spec`` as a plain dict (e.g. to record beside a dataset)."""
    return dataclasses.asdict(spec.params)
