"""ALS / BPR evaluation methods (optional package `implicit`): planted structure on toy data,
validation-based selection, and the clear error when `implicit` is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from recsys_db.evaluation import Catalog, Instances, MostPopular, metrics_on, suite
from recsys_db.evaluation import factorization as fz
from recsys_db.sequences import EventLog, from_arrays

T0 = 1_511_568_000
GROUP_A = [1, 2, 3, 4, 5, 6]  # 4 users view all of them
GROUP_B = [11, 12, 13, 14, 15, 16]  # 10 users view all of them: more popular than A


def grouped_log() -> EventLog:
    rows = []
    rng = np.random.default_rng(3)
    for user in range(2, 16):
        items = GROUP_A if user < 6 else GROUP_B
        for n, item in enumerate(rng.permutation(items)):
            rows.append((user, int(item), 100 + (item > 10), T0 + 60 * n))
    user, item, category, ts = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    return from_arrays(user, item, category, np.ones(len(rows)), ts, sort=True)


def instance(history: list[int], target: int, user: int = 1) -> Instances:
    """User `user` (not in training) has viewed `history`; the next item is `target`."""
    items = np.array(history, dtype=np.int32)
    categories = (100 + (items > 10)).astype(np.int32)
    return Instances(
        user=np.array([user], np.int32), hist_offsets=np.array([0, len(items)], np.int64),
        hist_item=items, hist_category=categories, hist_behavior=np.ones(len(items), np.int8),
        hist_ts=T0 + 3600 + np.arange(len(items), dtype=np.int64),
        target_item=np.array([target], np.int32),
        target_category=np.array([100 + (target > 10)], np.int32),
        target_ts=np.array([T0 + 7200], np.int64))


def hit_at_1(method, train: EventLog, inst: Instances) -> float:
    catalog = Catalog.from_log(train)
    method.fit(train, catalog)
    return metrics_on(inst, method, catalog, "item", k=1, exclude_seen=True)["HR@1"]


GOOD_ALS = {"factors": 4, "regularization": 0.1, "alpha": 10.0, "iterations": 15}


def test_als_ranks_the_planted_item_first() -> None:
    pytest.importorskip("implicit")
    train = grouped_log()
    # a new user viewed 5 of group A's items: the 6th comes first among the items not yet seen,
    # above the more popular group B - which is what most_popular ranks first
    for held_out in GROUP_A:
        history = [i for i in GROUP_A if i != held_out]
        inst = instance(history, held_out)
        assert hit_at_1(fz.ALS(fit_grid=[GOOD_ALS]), train, inst) == 1.0
        assert hit_at_1(MostPopular(), train, inst) == 0.0
    # interest moved from A to B: folded in from the whole history (mostly A) the unseen A item
    # comes first, from the last 2 events (B) the unseen B item does
    inst = instance([11, 12, 13, 1, 2, 3, 4, 5, 1, 2, 3, 14, 15], 16)
    assert hit_at_1(fz.ALS(fit_grid=[GOOD_ALS], query_grid=[{"last": None}]), train, inst) == 0.0
    assert hit_at_1(fz.ALS(fit_grid=[GOOD_ALS], query_grid=[{"last": 2}]), train, inst) == 1.0


def test_als_scores_every_catalog_column_and_unseen_items_last() -> None:
    pytest.importorskip("implicit")
    train = grouped_log()
    inst = instance([1, 2, 99], 3)  # item 99 never occurs in training
    catalog = Catalog.from_log(from_arrays(
        np.r_[train.user, 1], np.r_[train.item, 99], np.r_[train.category, 100],
        np.r_[train.behavior, 1], np.r_[train.ts, T0 + 3600], sort=True))
    method = fz.ALS(fit_grid=[GOOD_ALS])
    method.fit(train, catalog)
    scores = method.score(inst, slice(0, 1), "item")
    assert scores.shape == (1, catalog.n_items)
    assert scores[0, catalog.item_index(np.array([99]))[0]] == fz.UNSCORABLE
    order = catalog.items[np.argsort(-scores[0])]
    assert set(order[:6].tolist()) == set(GROUP_A)
    cat_scores = method.score(inst, slice(0, 1), "category")
    assert cat_scores.shape == (1, 2) and cat_scores[0, 0] > cat_scores[0, 1]  # 100 > 101


def test_hyper_parameters_are_picked_on_validation() -> None:
    pytest.importorskip("implicit")
    train = grouped_log()
    crushed = {**GOOD_ALS, "regularization": 1e6}  # all factors ~ 0: popularity order only
    method = fz.ALS(instance([1, 2, 3, 4, 5], 6), fit_grid=[crushed, GOOD_ALS],
                    query_grid=[{"last": None}])
    assert hit_at_1(method, train, instance([2, 3, 4, 5, 6], 1)) == 1.0
    assert method.selected["item"] == {**GOOD_ALS, "last": None}
    valid = [t["valid_NDCG@10"] for t in method.trials["item"]]
    assert len(valid) == 2 and valid[1] > valid[0]


def test_bpr_recent_items_query_finds_the_group() -> None:
    pytest.importorskip("implicit")
    train = grouped_log()
    params = {"factors": 8, "learning_rate": 0.05, "regularization": 0.001, "iterations": 300}
    method = fz.BPR(fit_grid=[params], query_grid=[{"last": 5}])
    assert hit_at_1(method, train, instance([1, 2, 3, 4, 5], 6)) == 1.0


def test_missing_implicit_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "implicit", None)  # `import implicit` now fails
    with pytest.raises(ImportError, match="pip install implicit"):
        fz.make_factorization("als")
    assert {"als", "bpr"} <= set(suite.METHODS)
    assert not {"als", "bpr"} & set(suite.default_methods("time"))  # opt-in only
    with pytest.raises(ValueError, match="pip install implicit"):
        suite.run_suite(grouped_log(), "leave-one-out", ["bpr"])
