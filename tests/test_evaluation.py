"""Offline evaluation: metrics and tie rule, splits, baselines on toy logs, runner, smoke run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from recsys_db import synth
from recsys_db.evaluation import (
    Catalog,
    Instances,
    ItemKNN,
    Markov,
    Method,
    MostPopular,
    PopularLastDay,
    Repeat,
    all_baselines,
    evaluate,
    format_table,
    fraction_cutoffs,
    leave_one_out,
    metrics_from_ranks,
    metrics_on,
    outcomes_on,
    ranks,
    read_events_csv,
    relevant_ranks,
    set_metrics,
    split_at,
    tie_order,
    time_split,
)
from recsys_db.evaluation.breakdown import groups
from recsys_db.sequences import EventLog, from_arrays
from recsys_db.synth.log import event_log

DAY = 86_400
T0 = 1_511_568_000


def make_log(rows: list[tuple[int, int, int, int]]) -> EventLog:
    """(user, item, category, ts) rows -> EventLog (behavior pv), sorted."""
    user, item, category, ts = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    return from_arrays(user, item, category, np.ones(len(rows)), ts, sort=True)


def seq_log(sequences: dict[int, list[int]], category_of=lambda i: 100 + i,
            start: int = T0, step: int = 60) -> EventLog:
    """One item sequence per user, events `step` seconds apart from `start`."""
    return make_log([(u, i, category_of(i), start + n * step)
                     for u, items in sequences.items() for n, i in enumerate(items)])


def one_instance(history: list[int], target: int) -> Instances:
    """An instance of user 1 with that item history (category of item i: 100 + i)."""
    items = np.array(history, dtype=np.int32)
    return Instances(
        user=np.array([1], np.int32), hist_offsets=np.array([0, len(items)], np.int64),
        hist_item=items, hist_category=items + 100, hist_behavior=np.ones(len(items), np.int8),
        hist_ts=T0 + np.arange(len(items), dtype=np.int64),
        target_item=np.array([target], np.int32),
        target_category=np.array([target + 100], np.int32),
        target_ts=np.array([T0 + len(items)], np.int64))


def rank_of(method: Method, train: EventLog, history: list[int], target: int,
            kind: str = "item") -> int:
    """Rank of `target` after `history`, method fit on `train`, candidates: every item of
    train, history and target."""
    extra = [(1, i, 100 + i, T0 + n) for n, i in enumerate([*history, target])]
    full = make_log(extra + list(zip(train.user, train.item, train.category, train.ts,
                                     strict=True)))
    catalog = Catalog.from_log(full)
    method.fit(train, catalog)
    instance = one_instance(history, target)
    result = metrics_on(instance, method, catalog, kind, k=range(1, len(full) + 1))
    return next(k for k in range(1, len(full) + 1) if result[f"HR@{k}"] == 1.0)


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_at_known_ranks() -> None:
    m = metrics_from_ranks(np.array([1]), 10)
    assert m == {"HR@10": 1.0, "NDCG@10": 1.0, "MRR@10": 1.0}
    m = metrics_from_ranks(np.array([3]), 10)
    assert m["HR@10"] == 1.0 and m["NDCG@10"] == pytest.approx(0.5)
    assert m["MRR@10"] == pytest.approx(1 / 3)
    m = metrics_from_ranks(np.array([1, 11]), [1, 10])
    assert m["HR@1"] == 0.5 and m["HR@10"] == 0.5 and m["NDCG@10"] == 0.5


def test_rank_counts_strictly_greater_scores() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [5.0, 1.0, 2.0, 3.0]])
    r = ranks(scores, np.array([2, 0]), tie_order(4))
    assert r.tolist() == [2, 1]


def test_tie_rule_is_a_fixed_permutation() -> None:
    n = 50
    position = tie_order(n, seed=3)
    assert np.array_equal(position, tie_order(n, seed=3))
    assert sorted(position.tolist()) == list(range(n))
    flat = np.zeros((n, n))  # every candidate tied: rank = 1 + its place in the permutation
    r = ranks(flat, np.arange(n), position)
    assert np.array_equal(r, position + 1)
    assert r.mean() == (n + 1) / 2  # ties cost the middle of the block on average
    scores = np.array([[2.0, 1.0, 1.0, 1.0, 0.0]])  # ties only within the 1.0 block
    pos = np.array([4, 2, 0, 1, 3])
    assert ranks(scores, np.array([1]), pos)[0] == 1 + 1 + 2  # item 0 above, items 2, 3 first
    assert ranks(scores, np.array([2]), pos)[0] == 2


def test_exclude_drops_candidates_but_never_the_target() -> None:
    scores = np.array([[3.0, 2.0, 1.0, 0.0]])
    exclude = np.array([[True, False, True, False]])
    assert ranks(scores, np.array([2]), tie_order(4), exclude)[0] == 2  # only item 1 above
    assert ranks(scores, np.array([0]), tie_order(4), exclude)[0] == 1  # target kept
    with pytest.raises(ValueError, match="NaN"):
        ranks(np.array([[np.nan, 1.0]]), np.array([0]), tie_order(2))


def test_precision_recall_auc_with_several_relevant_items() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    rank, auc = relevant_ranks(scores, np.array([0, 0]), np.array([1, 4]), tie_order(6))
    assert rank.tolist() == [2, 5]
    # 4 non-relevant candidates (columns 0, 2, 3, 5): 3 of them below column 1, 1 below column 4
    assert auc.tolist() == [pytest.approx((3 / 4 + 1 / 4) / 2)]
    m = set_metrics(rank, np.array([0, 0]), auc, [2, 10])
    assert m == {"Precision@2": 0.5, "Recall@2": 0.5, "Precision@10": 0.2, "Recall@10": 1.0,
                 "AUC": pytest.approx(0.5)}
    # excluding columns 0 and 4: column 4 is relevant, so it stays; column 0 goes
    exclude = np.array([[True, False, False, False, True, False]])
    rank, auc = relevant_ranks(scores, np.array([0, 0]), np.array([1, 4]), tie_order(6), exclude)
    assert rank.tolist() == [1, 4]
    assert auc.tolist() == [pytest.approx((3 / 3 + 1 / 3) / 2)]  # non-relevant: 2, 3, 5


def test_auc_of_a_single_target_and_the_tie_rule() -> None:
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 9.0]])
    position = np.array([2, 0, 3, 1])
    rank, auc = relevant_ranks(scores, np.array([0, 1]), np.array([1, 0]), position)
    # row 0: rank 2 of 4, 2 of 3 others below; row 1: column 3 above, column 1 precedes
    # column 0 in the tie order (ranked above), column 2 follows it (below)
    assert rank.tolist() == [2, 3] and auc.tolist() == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert rank.tolist() == ranks(scores, np.array([1, 0]), position).tolist()
    # one target per row: Precision@k = HR@k / k, Recall@k = HR@k, AUC = (n - rank) / (n - 1)
    m = set_metrics(rank, np.array([0, 1]), auc, 2)
    assert m["Precision@2"] == metrics_from_ranks(rank, 2)["HR@2"] / 2 == 0.25
    assert m["Recall@2"] == 0.5 and m["AUC"] == pytest.approx(((4 - 2) + (4 - 3)) / 3 / 2)
    with pytest.raises(ValueError, match="every row"):
        relevant_ranks(scores, np.array([0]), np.array([1]), position)


def test_metrics_on_counts_every_relevant_item_of_the_test_period() -> None:
    # user 1: history 1, 2, 3; test period 4 (the target), 2, 4 (a repeat), 9
    log = make_log([(1, i, 100 + i, T0 + n) for n, i in enumerate([1, 2, 3, 4, 2, 4, 9])]
                   + [(2, i, 100 + i, T0 + n) for n, i in enumerate([5, 6, 7, 8])])
    split = split_at(log, T0 + 3, T0 + 1)
    assert split.test.user.tolist() == [1, 2]
    catalog = Catalog.from_log(log)
    repeat = Repeat()
    repeat.fit(split.train, catalog)
    outcomes = outcomes_on(split.test, repeat, catalog, "item")
    # user 1 relevant {2, 4, 9}, user 2 relevant {8}
    assert outcomes.rel_rows.tolist() == [0, 0, 0, 1]
    assert outcomes.rel_rank[:3].tolist()[0] == 2  # item 2 after item 3 (most recent first)
    m = outcomes.metrics(10)
    rank_9 = outcomes.rel_rank[2]
    assert rank_9 > 3 and m["Recall@10"] == 1.0
    assert m["Precision@10"] == pytest.approx((3 / 10 + 1 / 10) / 2)
    assert m["HR@10"] == 1.0 and m["instances"] == 2
    alone = outcomes.metrics(10, np.array([False, True]))
    assert alone["Precision@10"] == pytest.approx(0.1) and alone["instances"] == 1


# --- catalog and splits ----------------------------------------------------------------------


def test_catalog_items_categories_and_majority_category() -> None:
    log = make_log([(1, 7, 3, T0), (1, 7, 3, T0 + 1), (1, 7, 5, T0 + 2), (2, 9, 0, T0),
                    (2, 4, 5, T0 + 1)])
    catalog = Catalog.from_log(log)
    assert catalog.items.tolist() == [4, 7, 9]
    assert catalog.categories.tolist() == [3, 5]  # 0 = unknown is never a candidate
    assert catalog.item_category.tolist() == [5, 3, 0]
    assert catalog.item_index(np.array([9, 4, 8])).tolist() == [2, 0, -1]
    assert catalog.category_index(np.array([0, 5])).tolist() == [-1, 1]


def test_leave_one_out_contents() -> None:
    log = seq_log({1: [10, 11, 12, 13, 14], 2: [20, 21], 3: [30, 31, 32]})
    split = leave_one_out(log)
    train = list(zip(split.train.user.tolist(), split.train.item.tolist(), strict=True))
    assert train == [(1, 10), (1, 11), (1, 12), (2, 20), (2, 21), (3, 30)]
    assert split.test.user.tolist() == [1, 3] and split.valid.user.tolist() == [1, 3]
    assert split.test.target_item.tolist() == [14, 32]
    assert split.valid.target_item.tolist() == [13, 31]
    assert split.test.target_category.tolist() == [114, 132]
    assert split.test.hist_item[split.test.history(0)].tolist() == [10, 11, 12, 13]
    assert split.test.hist_item[split.test.history(1)].tolist() == [30, 31]
    assert split.valid.hist_item[split.valid.history(0)].tolist() == [10, 11, 12]
    assert split.valid.hist_item[split.valid.history(1)].tolist() == [30]
    assert split.test.target_ts.tolist() == [T0 + 4 * 60, T0 + 2 * 60]
    assert split.test.hist_ts[split.test.history(0)].tolist() == [T0 + n * 60 for n in range(4)]


def test_time_split_contents() -> None:
    cut = T0 + 8 * DAY
    val = cut - DAY
    log = make_log([
        (1, 10, 1, T0), (1, 11, 1, val - 5), (1, 12, 1, val + 5), (1, 13, 1, val + 9),
        (1, 14, 1, cut + 1), (1, 15, 1, cut + 2),
        (2, 20, 1, val + 1), (2, 21, 1, cut + 3),  # no training history: no valid instance
        (3, 30, 1, T0 + 5), (3, 31, 1, cut + 50),  # nothing in the validation period
        (4, 40, 1, T0 + 6), (4, 41, 1, val + 7),  # nothing in the test period
        (5, 50, 1, cut + 10), (5, 51, 1, cut + DAY),  # only test-period events: no instance
    ])
    split = time_split(log, test_days=1)  # cutoff = max ts - 1 day = cut
    assert split.params == {"cutoff_ts": float(cut), "val_cutoff_ts": float(val),
                            "test_days": 1.0}
    assert sorted(set(split.train.item.tolist())) == [10, 11, 30, 40]
    assert split.valid.user.tolist() == [1, 4]
    assert split.valid.target_item.tolist() == [12, 41]
    assert split.valid.hist_item[split.valid.history(0)].tolist() == [10, 11]
    assert split.valid.hist_item[split.valid.history(1)].tolist() == [40]
    assert split.test.user.tolist() == [1, 2, 3]
    assert split.test.target_item.tolist() == [14, 21, 31]
    assert split.test.hist_item[split.test.history(0)].tolist() == [10, 11, 12, 13]
    assert split.test.hist_item[split.test.history(1)].tolist() == [20]
    assert split.test.hist_item[split.test.history(2)].tolist() == [30]
    # relevant events: every event of the user in the period, the target first
    offsets, items = split.test.relevant("item")
    assert [items[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)] == [
        [14, 15], [21], [31]]
    offsets, items = split.valid.relevant("item")
    assert [items[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)] == [
        [12, 13], [41]]
    assert split.test.take(np.array([2, 0])).rel_item.tolist() == [31, 14, 15]
    other = split_at(log, val, val - DAY / 2)
    assert other.test.target_item.tolist() == [12, 31, 41]
    with pytest.raises(ValueError, match="not both"):
        time_split(log, 0.1, test_days=1)


def test_fraction_cut_off_starts_the_last_share_of_events() -> None:
    # 20 events of 3 users at distinct times (minutes 0..19, interleaved): fraction 0.1 puts
    # the test period at the 2 latest events, validation at the 2 before them
    times = {1: [0, 3, 6, 9, 12, 15, 18], 2: [1, 4, 7, 10, 13, 16, 19], 3: [2, 5, 8, 11, 14, 17]}
    log = make_log([(u, 100 * u + n, 1, T0 + 60 * t) for u, ts in times.items()
                    for n, t in enumerate(ts)])
    assert fraction_cutoffs(log.ts, 0.1) == (T0 + 60 * 18, T0 + 60 * 16)
    split = time_split(log, 0.1)
    assert split.params == {"cutoff_ts": T0 + 60 * 18, "val_cutoff_ts": T0 + 60 * 16,
                            "test_fraction": 0.1}
    assert len(split.train) == 16 and split.train.ts.max() == T0 + 60 * 15
    assert split.test.user.tolist() == [1, 2] and split.test.target_item.tolist() == [106, 206]
    assert split.valid.user.tolist() == [2, 3] and split.valid.target_item.tolist() == [205, 305]
    assert split.test.history_lengths().tolist() == [6, 6]  # every event before the cut-off
    # 0.25 of 20 = 5 events: minutes 15..19; validation minutes 10..14
    assert fraction_cutoffs(log.ts, 0.25) == (T0 + 60 * 15, T0 + 60 * 10)
    assert time_split(log).params["cutoff_ts"] == T0 + 60 * 18  # the default fraction is 0.1
    # a late outlier moves the last-day cut-off past every other event, not the fraction's
    late = make_log([*zip(log.user, log.item, log.category, log.ts, strict=True),
                     (3, 999, 1, T0 + 30 * DAY)])
    assert time_split(late, test_days=1).test.target_item.tolist() == [999]
    assert time_split(late, 0.1).params["cutoff_ts"] == T0 + 60 * 19
    # events sharing the cut-off's timestamp all fall in the test period
    tied = make_log([(1, 1, 1, T0), (2, 2, 1, T0 + 1), (1, 3, 1, T0 + 2), (2, 4, 1, T0 + 3),
                     (1, 5, 1, T0 + 3), (2, 6, 1, T0 + 3)])
    # k = 1: the test period holds the 3 events at T0 + 3, validation the 1 event before them
    assert fraction_cutoffs(tied.ts, 0.2) == (T0 + 3, T0 + 2)
    tied_split = time_split(tied, 0.2)
    assert tied_split.test.target_item.tolist() == [5, 4]
    assert tied_split.test.rel_item.tolist() == [5, 4, 6]
    assert tied_split.valid.target_item.tolist() == [3] and len(tied_split.train) == 2
    for bad in (0.0, 0.5, -1):
        with pytest.raises(ValueError, match="test fraction"):
            time_split(log, bad)


def test_splits_are_fast_on_a_million_events() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    user = np.sort(rng.integers(1, 10_001, n))
    log = from_arrays(user, rng.integers(1, 100_001, n), rng.integers(1, 2_000, n),
                      np.ones(n), T0 + rng.integers(0, 9 * DAY, n), sort=True)
    started = time.perf_counter()
    loo, ts = leave_one_out(log), time_split(log)
    assert time.perf_counter() - started < 2.0
    assert len(loo.test) == log.n_users and len(ts.test) > 0
    assert len(loo.train) == n - 2 * log.n_users


def test_instances_take_keeps_histories() -> None:
    split = leave_one_out(seq_log({1: [10, 11, 12, 13], 2: [20, 21, 22]}))
    sub = split.test.take(np.array([1]))
    assert sub.user.tolist() == [2] and sub.target_item.tolist() == [22]
    assert sub.hist_item.tolist() == [20, 21] and sub.hist_offsets.tolist() == [0, 2]


# --- baselines -------------------------------------------------------------------------------


def test_baselines_follow_the_protocol() -> None:
    for method in all_baselines():
        assert isinstance(method, Method)
    assert [m.name for m in all_baselines()] == [
        "most_popular", "popular_last_day", "repeat", "markov", "item_knn"]


def test_most_popular_ranks_the_most_frequent_item_first() -> None:
    train = seq_log({2: [5, 6, 5, 7], 3: [5, 8, 9]})
    assert rank_of(MostPopular(), train, [6, 7], 5) == 1
    assert rank_of(MostPopular(), train, [6, 7], 5, "category") == 1


def test_popular_last_day_uses_the_last_training_day() -> None:
    old = [(2, 5, 105, T0 + n) for n in range(10)]  # 5 is popular overall, long ago
    recent = [(3, 6, 106, T0 + 5 * DAY + n) for n in range(3)] + [(4, 7, 107, T0 + 5 * DAY)]
    train = make_log(old + recent)
    assert rank_of(PopularLastDay(), train, [8], 6) == 1
    assert rank_of(PopularLastDay(), train, [8], 7) == 2
    assert rank_of(PopularLastDay(), train, [8], 5) == 3  # popularity breaks the 0-count tie
    assert rank_of(MostPopular(), train, [8], 5) == 1


def test_repeat_ranks_history_most_recent_first_then_popular() -> None:
    train = seq_log({2: [9, 9, 9, 8]})
    history = [1, 2, 3, 2]
    assert rank_of(Repeat(), train, history, 2) == 1
    assert rank_of(Repeat(), train, history, 3) == 2
    assert rank_of(Repeat(), train, history, 1) == 3
    assert rank_of(Repeat(), train, history, 9) == 4  # unseen: by popularity
    assert rank_of(Repeat(), train, history, 3, "category") == 2


def test_markov_follows_the_transition_from_the_last_item() -> None:
    train = seq_log({2: [1, 2, 3, 1, 2], 3: [1, 2, 4, 4, 4, 4, 4], 4: [3, 1, 2]})
    assert rank_of(Markov(), train, [4, 3, 1], 2) == 1
    assert rank_of(Markov(), train, [4, 2], 3) <= 2  # 2 -> 3 (x1) and 2 -> 4 (x1) tie on count
    assert rank_of(Markov(), train, [4, 3, 1], 2, "category") == 1


def test_item_knn_scores_co_occurring_items() -> None:
    train = seq_log({2: [1, 2, 30, 40], 3: [2, 1, 50], 4: [1, 2, 60, 70, 80, 90], 5: [3, 3, 3]})
    assert rank_of(ItemKNN(), train, [1], 2) == 1
    # 3 is the most popular item but never near 1: after 1's 8 neighbours, first of the rest
    assert rank_of(ItemKNN(), train, [1], 3) == 9
    assert rank_of(ItemKNN(), train, [1], 2, "category") == 1


def test_item_and_category_sequences_use_the_same_logic() -> None:
    # items differ, categories repeat a -> b: markov on categories sees c1 -> c2
    train = make_log([(2, 1, 1, T0), (2, 2, 2, T0 + 1), (3, 3, 1, T0), (3, 4, 2, T0 + 1)])
    full = make_log([*zip(train.user, train.item, train.category, train.ts, strict=True),
                     (1, 5, 1, T0), (1, 6, 3, T0 + 1), (1, 7, 1, T0 + 2), (1, 8, 2, T0 + 3)])
    catalog = Catalog.from_log(full)
    test = leave_one_out(full).test
    test = test.take(test.user == 1)
    method = Markov()
    method.fit(train, catalog)
    scores = method.score(test, slice(0, 1), "category")
    assert scores.shape == (1, 3)
    assert int(np.argmax(scores[0])) == 1  # category 2 follows category 1


# --- runner ----------------------------------------------------------------------------------


def test_exclude_seen_keeps_a_seen_target_scorable() -> None:
    # user 1: history 1, 2, 3 then target 3 again; popularity: 1 > 2 > 3
    log = seq_log({1: [1, 2, 3, 3, 3], 2: [1, 1, 1, 2, 2, 1, 5], 3: [1, 2, 4]})
    split = leave_one_out(log)
    catalog = Catalog.from_log(log)
    method = MostPopular()
    method.fit(split.train, catalog)
    test = split.test.take(split.test.user == 1)
    plain = metrics_on(test, method, catalog, "item", k=1)
    seen = metrics_on(test, method, catalog, "item", k=1, exclude_seen=True)
    assert plain["HR@1"] == 0.0 and seen["HR@1"] == 1.0  # items 1 and 2 dropped, 3 kept
    rows = evaluate([MostPopular()], split, catalog, targets=("item",), k=3, exclude_seen=True)
    assert rows[0]["instances"] == 3


def test_category_target_skips_unknown_categories() -> None:
    log = make_log([(1, 1, 1, T0), (1, 2, 1, T0 + 1), (1, 3, 0, T0 + 2),
                    (2, 1, 1, T0), (2, 2, 1, T0 + 1), (2, 3, 2, T0 + 2)])
    split = leave_one_out(log)
    catalog = Catalog.from_log(log)
    rows = evaluate([Repeat()], split, catalog)
    assert [(r["target"], r["instances"]) for r in rows] == [("item", 2), ("category", 1)]


def test_evaluate_rows_table_and_determinism() -> None:
    log = seq_log({u: [(u * 7 + n * 3) % 11 + 1 for n in range(8)] for u in range(1, 30)})
    split, catalog = leave_one_out(log), Catalog.from_log(log)
    first = evaluate(all_baselines(), split, catalog, k=5, batch_size=4)
    second = evaluate(all_baselines(), split, catalog, k=5, batch_size=64)
    drop = ("fit_s", "score_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in first] == \
        [{k: v for k, v in r.items() if k not in drop} for r in second]
    assert {"method", "target", "HR@5", "NDCG@5", "MRR@5", "instances"} <= set(first[0])
    table = format_table(first)
    assert "item_knn" in table and "NDCG@5" in table and len(table.splitlines()) == 12
    valid = evaluate(all_baselines()[:1], split, catalog, on="valid", targets=("item",))
    assert valid[0]["instances"] == len(split.valid)


def test_breakdown_groups_by_history_length_and_target_kind() -> None:
    # history lengths 5, 6, 50, 51; user 2's target is in its history, items 1000+ are new
    lengths = {1: 5, 2: 6, 3: 50, 4: 51}
    targets = {1: 1000, 2: 3, 3: 1001, 4: 1002}
    split = leave_one_out(seq_log({u: [*range(1, n + 1), 0, targets[u]]
                                   for u, n in lengths.items()}, category_of=lambda i: 7))
    assert split.test.history_lengths().tolist() == [6, 7, 51, 52]  # the valid event (0) too
    found = {(by, group): mask.tolist() for by, group, mask in groups(split.test, "item")}
    assert found == {("history_length", "<=5"): [False] * 4,
                     ("history_length", "6-50"): [True, True, False, False],
                     ("history_length", ">50"): [False, False, True, True],
                     ("target_kind", "repeat"): [False, True, False, False],
                     ("target_kind", "new"): [True, False, True, True]}
    # one category for every item: every category target is a repeat
    assert [g[2].tolist() for g in groups(split.test, "category")][3] == [True] * 4


def test_breakdown_groups_partition_the_users(synthetic_log: EventLog) -> None:
    split = time_split(synthetic_log, 0.1)
    catalog = Catalog.from_log(synthetic_log)
    found = groups(split.test, "item")
    for by in ("history_length", "target_kind"):  # disjoint masks covering every test user
        masks = np.array([m for b, _, m in found if b == by])
        assert (masks.sum(axis=0) == 1).all() and len(np.unique(split.test.user)) == len(
            split.test)
    rows = evaluate([Repeat(), ItemKNN()], split, catalog, breakdown=True)
    for row in rows:
        for by in ("history_length", "target_kind"):
            parts = [g for g in row["breakdown"] if g["by"] == by]
            assert sum(g["instances"] for g in parts) == row["instances"]
            for metric in ("HR@10", "NDCG@10", "Precision@10", "Recall@10", "AUC"):
                total = sum(g[metric] * g["instances"] for g in parts)
                assert total == pytest.approx(row[metric] * row["instances"])
        kinds = {g["group"]: g for g in row["breakdown"] if g["by"] == "target_kind"}
        assert kinds["repeat"]["instances"] > 0 and kinds["new"]["instances"] > 0
    repeat_item = rows[0]["breakdown"]
    assert next(g for g in repeat_item if g["group"] == "repeat")["HR@10"] > \
        next(g for g in repeat_item if g["group"] == "new")["HR@10"]
    assert "breakdown" not in evaluate([Repeat()], split, catalog)[0]


def test_read_events_csv(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,category_id,behavior,ts\n"
                    "u2,a,x,pv,20\nu1,b,,buy,30\nu1,a,x,cart,10\n")
    log = read_events_csv(path)
    assert log.n_users == 2 and len(log) == 3
    assert log.ts.tolist() == [20, 10, 30]  # user u2 (key 1) first, then u1 in time order
    assert log.behavior.tolist() == [1, 3, 4]
    assert log.category.tolist() == [1, 1, 0]


# --- synthetic smoke run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_log() -> EventLog:
    return event_log(synth.make_spec(users=1_000, items=3_000, events=60_000, seed=7))


@pytest.mark.parametrize("make_split", [leave_one_out, time_split])
def test_all_baselines_on_synthetic_data(synthetic_log: EventLog, make_split) -> None:
    split = make_split(synthetic_log)
    catalog = Catalog.from_log(synthetic_log)
    rows = evaluate(all_baselines(), split, catalog, k=10)
    assert len(rows) == 10
    hr = {(r["method"], r["target"]): r["HR@10"] for r in rows}
    assert all(0.0 <= v <= 1.0 for v in hr.values())
    assert all(r["instances"] > 50 for r in rows)
    for method in ("markov", "item_knn"):
        assert hr[(method, "item")] > hr[("most_popular", "item")]
        assert hr[(method, "category")] > hr[("most_popular", "category")]
