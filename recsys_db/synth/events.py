"""Simulation of the events of a `SyntheticSpec`, vectorised over blocks of users."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from recsys_db.synth.arrays import cumulative_ptr, sample_rows
from recsys_db.synth.params import BLOCK_STREAM, SynthParams, behavior_tables, stream
from recsys_db.synth.spec import SyntheticSpec


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
        yield _simulate_block(spec, lo, hi, stream(spec.params.seed, BLOCK_STREAM, number))


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
    starts = cumulative_ptr(counts)[:-1]
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
    lane_start = cumulative_ptr(per_user)[:-1][lane_order]
    active = np.searchsorted(-lane_len, -np.arange(int(lane_len[0])), side="left")
    for t in range(1, int(lane_len[0])):
        at = lane_start[: active[t]] + t
        at = at[moving[at]]
        if at.size:
            changed[at] = spec.related_target[
                sample_rows(spec.related_cdf, spec.related_ptr, changed[at - 1], move_u[at])
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
    slots = sample_rows(
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


def _pick_behaviors(
    rng: np.random.Generator, review: np.ndarray, params: SynthParams
) -> np.ndarray:
    cuts = behavior_tables(params)[review.astype(np.intp)]
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
    starts = cumulative_ptr(counts)[:-1]
    slack -= slack[starts][owner]
    last = starts + counts - 1
    room = params.window_s - counts  # largest slack span that still fits
    scale = np.minimum(1.0, room / np.maximum(slack[last], 1))
    offset = step + np.floor(slack * scale[owner]).astype(np.int64)
    span = offset[last]
    begin = np.floor(rng.random(len(counts)) * (params.window_s - span)).astype(np.int64)
    return params.start_ts + begin[owner] + offset

