"""Train / validation / test splits of an EventLog for offline next-event evaluation.

Protocol (the same for every method, baseline or learned):

* every method is fit ONCE on `Split.train`;
* validation instances (`Split.valid`, for early stopping and tuning) have the training events
  of their user as history;
* test instances (`Split.test`) have a LONGER history: every event of the user before the test
  target, including the validation-period events. Those events are input only: a sequence
  model reads them as context when it scores, nothing is trained on them.

An instance is (user, history, target event); the task is to rank the target's item (or
category) first among all candidates of the `Catalog`. An instance may also carry its
"relevant" events (`rel_*`): the target and every later event of the user in the same period
(time split), whose distinct items (categories) are the relevant set of Precision@k, Recall@k
and AUC; without them (leave-one-out) the target alone is relevant. Histories are prefixes of
a user's events in time order, stored CSR-style (`hist_offsets`), so construction is
vectorised.
Everything is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from recsys_db.sequences import EventLog

SECONDS_PER_DAY = 86_400
DEFAULT_TEST_FRACTION = 0.1


@dataclass
class Instances:
    """Evaluation instances; history of instance i is `hist_*[hist_offsets[i]:hist_offsets[i+1]]`
    (oldest first). Histories are never empty."""

    user: np.ndarray  # int32 user_key per instance
    hist_offsets: np.ndarray  # int64, len = n + 1
    hist_item: np.ndarray  # int32 item_key of each history event
    hist_category: np.ndarray  # int32 category_key (0 = unknown)
    hist_behavior: np.ndarray  # int8 behavior_key
    hist_ts: np.ndarray  # int64 unix seconds
    target_item: np.ndarray  # int32 per instance
    target_category: np.ndarray  # int32 per instance (0 = unknown)
    target_ts: np.ndarray  # int64 per instance
    # relevant events of instance i: rel_*[rel_offsets[i]:rel_offsets[i+1]] (None: the target)
    rel_offsets: np.ndarray | None = None
    rel_item: np.ndarray | None = None
    rel_category: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def history(self, i: int) -> slice:
        """Slice of the `hist_*` arrays holding instance i's history."""
        return slice(int(self.hist_offsets[i]), int(self.hist_offsets[i + 1]))

    def history_lengths(self) -> np.ndarray:
        return np.diff(self.hist_offsets)

    def batch_history(self, batch: slice) -> tuple[np.ndarray, slice]:
        """(offsets relative to the batch's first history event, slice into `hist_*`) of the
        instances in `batch` (a slice with step 1)."""
        start, stop, _ = batch.indices(len(self))
        offsets = self.hist_offsets[start:stop + 1]
        return offsets - offsets[0], slice(int(offsets[0]), int(offsets[-1]))

    def take(self, index: np.ndarray) -> Instances:
        """The instances at `index` (int array or boolean mask), in that order."""
        index = np.flatnonzero(index) if index.dtype == bool else np.asarray(index, np.int64)
        starts, ends = self.hist_offsets[index], self.hist_offsets[index + 1]
        src = _concat_ranges(starts, ends)
        rel: dict[str, np.ndarray | None] = {}
        if self.rel_offsets is not None:
            assert self.rel_item is not None and self.rel_category is not None
            r_starts, r_ends = self.rel_offsets[index], self.rel_offsets[index + 1]
            r_src = _concat_ranges(r_starts, r_ends)
            rel = {"rel_offsets": _offsets(r_ends - r_starts),
                   "rel_item": self.rel_item[r_src], "rel_category": self.rel_category[r_src]}
        return Instances(
            user=self.user[index], hist_offsets=_offsets(ends - starts),
            hist_item=self.hist_item[src], hist_category=self.hist_category[src],
            hist_behavior=self.hist_behavior[src], hist_ts=self.hist_ts[src],
            target_item=self.target_item[index], target_category=self.target_category[index],
            target_ts=self.target_ts[index], **rel)

    def relevant(self, target: str) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, item or category keys) of each instance's relevant events (the target
        alone when the instances carry none); keys may repeat, category 0 = unknown."""
        if self.rel_offsets is None:
            keys = self.target_item if target == "item" else self.target_category
            return np.arange(len(self) + 1, dtype=np.int64), keys
        keys = self.rel_item if target == "item" else self.rel_category
        assert keys is not None
        return self.rel_offsets, keys


@dataclass
class Split:
    """A named split: methods fit on `train`, tune on `valid`, report on `test`."""

    name: str
    train: EventLog
    valid: Instances
    test: Instances
    params: dict[str, float]

    def describe(self) -> str:
        """One line of counts, e.g. for logs and reports."""
        extra = "".join(f", {k}={_param(k, v)}" for k, v in self.params.items())
        return (f"{self.name}: train {len(self.train)} events / {self.train.n_users} users, "
                f"valid {len(self.valid)}, test {len(self.test)} instances{extra}")


def leave_one_out(log: EventLog) -> Split:
    """Per user with >= 3 events: test target = last event (history: all events before it),
    validation target = second-to-last (history: the events before it), training = the rest.

    Users with fewer than 3 events have no instances; all their events stay in `train`.
    """
    starts, ends = log.offsets[:-1], log.offsets[1:]
    eligible = (ends - starts) >= 3
    s, e = starts[eligible], ends[eligible]
    valid = _instances(log, s, e - 2)
    test = _instances(log, s, e - 1)
    n_users = log.n_users
    counts = np.diff(log.offsets)
    cut = np.where(eligible, counts - 2, counts)  # events kept in training per user
    position = np.arange(len(log)) - np.repeat(starts, counts)
    train = log.take(position < np.repeat(cut, counts)) if n_users else log
    return Split("leave_one_out", train, valid, test, {})


def time_split(log: EventLog, test_fraction: float | None = None, *,
               test_days: float | None = None) -> Split:
    """Global temporal split; the test period is the last `test_fraction` of the events
    (default 0.1) or, with `test_days`, the last `test_days` days of the log. Validation is
    the same share just before it: the `test_fraction` of events before the test cut-off, or
    the `test_days` days before it. See `fraction_cutoffs` and `split_at`."""
    if test_days is not None:
        if test_fraction is not None:
            raise ValueError("give a test fraction or test days, not both")
        if not test_days > 0:
            raise ValueError(f"test days must be > 0, got {test_days}")
        cutoff = float(log.ts.max()) - test_days * SECONDS_PER_DAY if len(log) else 0.0
        split = split_at(log, cutoff, cutoff - test_days * SECONDS_PER_DAY)
        split.params["test_days"] = float(test_days)
        return split
    fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    split = split_at(log, *fraction_cutoffs(log.ts, fraction))
    split.params["test_fraction"] = float(fraction)
    return split


def fraction_cutoffs(ts: np.ndarray, fraction: float) -> tuple[float, float]:
    """(test cut-off, validation cut-off) such that the test period [cutoff, end) starts at the
    k-th latest event, k = round(fraction * n) (at least 1), and validation [val_cutoff, cutoff)
    at the k-th latest event before the test period (the first event when there are fewer).
    Events sharing a cut-off's timestamp all fall in the later period, so a period may hold a
    few more than k events."""
    if not 0 < fraction < 0.5:
        raise ValueError(f"test fraction must be in (0, 0.5), got {fraction}")
    n = len(ts)
    if n == 0:
        return 0.0, 0.0
    k = max(1, int(np.floor(fraction * n + 0.5)))
    ordered = np.sort(ts)
    cutoff = ordered[n - k]
    before = int(np.searchsorted(ordered, cutoff, side="left"))  # events before the test period
    return float(cutoff), float(ordered[max(before - k, 0)])


def split_at(log: EventLog, cutoff_ts: float, val_cutoff_ts: float) -> Split:
    """Time split at given cut-offs: the test period is [cutoff, end), validation
    [val_cutoff, cutoff), training = every event with ts < val_cutoff.

    Validation instance per user: the user's first event in [val_cutoff, cutoff), history =
    the user's training events, relevant events = all the user's validation-period events.
    Test instance per user: the first event at or after cutoff, history = ALL the user's events
    before cutoff, relevant events = all the user's test-period events. Users without a history
    get no instance.
    """
    starts, ends = log.offsets[:-1], log.offsets[1:]
    n_before_val = _count_before(log, val_cutoff_ts)
    n_before_cut = _count_before(log, cutoff_ts)
    v_target = starts + n_before_val
    v_end = starts + n_before_cut
    v_ok = (n_before_val > 0) & (v_target < v_end)
    t_target = starts + n_before_cut
    t_ok = (n_before_cut > 0) & (t_target < ends)
    valid = _instances(log, starts[v_ok], v_target[v_ok], v_end[v_ok])
    test = _instances(log, starts[t_ok], t_target[t_ok], ends[t_ok])
    train = log.take(log.ts < val_cutoff_ts)
    return Split("time", train, valid, test,
                 {"val_cutoff_ts": float(val_cutoff_ts), "cutoff_ts": float(cutoff_ts)})


def _param(name: str, value: float) -> str:
    if name.endswith("_ts"):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{value:g}"


def _count_before(log: EventLog, ts: float) -> np.ndarray:
    """Per user: number of events with ts < `ts` (a prefix, since users are in time order)."""
    before = np.r_[0, np.cumsum(log.ts < ts, dtype=np.int64)]
    return before[log.offsets[1:]] - before[log.offsets[:-1]]


def _instances(log: EventLog, hist_start: np.ndarray, target: np.ndarray,
               rel_end: np.ndarray | None = None) -> Instances:
    """Instances whose history is log[hist_start:target], target event log[target] and
    relevant events log[target:rel_end] (none stored without rel_end: the target alone)."""
    hist_start = np.asarray(hist_start, dtype=np.int64)
    target = np.asarray(target, dtype=np.int64)
    src = _concat_ranges(hist_start, target)
    rel: dict[str, np.ndarray] = {}
    if rel_end is not None:
        r_src = _concat_ranges(target, np.asarray(rel_end, dtype=np.int64))
        rel = {"rel_offsets": _offsets(rel_end - target), "rel_item": log.item[r_src],
               "rel_category": log.category[r_src]}
    return Instances(
        user=log.user[target], hist_offsets=_offsets(target - hist_start),
        hist_item=log.item[src], hist_category=log.category[src],
        hist_behavior=log.behavior[src], hist_ts=log.ts[src],
        target_item=log.item[target], target_category=log.category[target],
        target_ts=log.ts[target], **rel)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _concat_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[i], ends[i]) over i, vectorised."""
    lengths = ends - starts
    offsets = _offsets(lengths)
    return np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
