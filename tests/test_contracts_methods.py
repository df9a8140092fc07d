"""The contract every evaluation method passes: the built-in baselines, the interest encoders
(lstm, gru, attention) and, with the optional package implicit, als / bpr.

The idea of implicit's RecommenderBase test mixin (one suite, a synthetic log with a known
answer), written as a suite parametrised over the method registries rather than a mixin: a
method added to BASELINES, ENCODERS or FACTORIZATION_METHODS joins the suite by itself, and
`test_every_registered_method_has_a_known_answer` fails until its expected answer is declared.

On the planted log of tests/contracts.py, time split (train / valid / test by timestamp):
* shapes and ids: one row per instance in instance order, one finite column per candidate;
* the known answer (EXPECT): "successor" methods rank the chain successor of the user's last
  item first; "history" methods rank the user's own chain first, the successor exactly CHAIN-th
  (the least recent of the last lap); "group" methods (no notion of order) rank the user's own
  chain first; "popular" methods rank the hot item first for everyone;
* deterministic: a second instance fitted with the same seed gives the same scores;
* no future: scores do not change when events after the cut-off are added to the log, nor when
  the instances' targets and relevant events are replaced with garbage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from contracts import CHAIN, HOT, T0, event_log, future_events, planted_events, successor

from recsys_db.evaluation import BASELINES, TARGETS, Catalog, Method, split_at
from recsys_db.evaluation.factorization import FACTORIZATION_METHODS, implicit_available
from recsys_db.evaluation.learned import InterestEncoderMethod
from recsys_db.evaluation.splits import Instances, Split
from recsys_db.interest.encoder import ENCODERS
from recsys_db.interest.train import TrainConfig

EXPECT = {
    "most_popular": "popular", "popular_last_day": "popular", "repeat": "history",
    "markov": "successor", "item_knn": "successor",
    "lstm": "successor", "gru": "successor", "attention": "successor",
    "als": "group", "bpr": "group",
}
# test period from the 23rd event of each user, validation from the 19th (users start 1-48 s
# after T0, one event a minute: each user has 18 training events, 4 validation events, 6-8 test)
CUTOFF = T0 + 60 * 22
VAL_CUTOFF = T0 + 60 * 18


def _encoder(name: str, valid: Instances) -> Method:
    config = TrainConfig(dim=16, epochs=20, batch_size=8, max_len=20, window=10, lr=5e-3,
                         patience=20, seed=0, threads=1)
    return InterestEncoderMethod(name, config, valid)


def _factorization(name: str, valid: Instances) -> Method:
    if not implicit_available():
        pytest.skip("the optional package implicit is not installed")
    from recsys_db.evaluation.factorization import make_factorization

    grid = {"als": [{"factors": 8, "regularization": 0.1, "iterations": 10}],
            "bpr": [{"factors": 8, "learning_rate": 0.05, "regularization": 0.01,
                     "iterations": 200}]}[name]
    return make_factorization(name, valid, fit_grid=grid, query_grid=[{"last": 5}])


FACTORIES: dict[str, Callable[[str, Instances], Method]] = {
    **{name: (lambda name, valid: BASELINES[name]()) for name in BASELINES},
    **{name: _encoder for name in ENCODERS},
    **{name: _factorization for name in FACTORIZATION_METHODS},
}


@dataclasses.dataclass
class Planted:
    split: Split
    catalog: Catalog
    future: Split  # the same cut-offs on the log plus events after every one of its events


@pytest.fixture(scope="module")
def planted() -> Planted:
    events = planted_events()
    later = future_events(events, after_ts=max(e.ts for e in events))
    log, longer = event_log(events), event_log(events + later)
    catalog = Catalog.from_log(log)
    assert _same_catalog(Catalog.from_log(longer), catalog)  # later events: known items only
    return Planted(split_at(log, CUTOFF, VAL_CUTOFF), catalog,
                   split_at(longer, CUTOFF, VAL_CUTOFF))


def _same_catalog(a: Catalog, b: Catalog) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f))
               for f in ("items", "categories", "item_category"))


def _fit(name: str, planted: Planted) -> Method:
    method = FACTORIES[name](name, planted.split.valid)
    method.fit(planted.split.train, planted.catalog)
    return method


def _scores(method: Method, instances: Instances, target: str) -> np.ndarray:
    return np.array(method.score(instances, slice(0, len(instances)), target), dtype=np.float64)


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request: pytest.FixtureRequest, planted: Planted) -> tuple[str, Method]:
    return request.param, _fit(request.param, planted)


def test_every_registered_method_has_a_known_answer() -> None:
    assert set(EXPECT) == set(FACTORIES)


def test_the_planted_split_is_what_the_contract_assumes(planted: Planted) -> None:
    split = planted.split
    n_users = len(np.unique(split.train.user))
    assert len(split.test) == len(split.valid) == n_users == 48
    assert np.all(np.diff(split.train.offsets) == 18)
    last = split.test.hist_item[split.test.hist_offsets[1:] - 1]
    assert np.array_equal(split.test.target_item, [successor(int(i)) for i in last])
    for field in ("user", "item", "category", "behavior", "ts"):  # the later events: test only
        assert np.array_equal(getattr(planted.future.train, field), getattr(split.train, field))


def test_scores_have_one_row_per_instance_and_one_column_per_candidate(
        fitted: tuple[str, Method], planted: Planted) -> None:
    name, method = fitted
    test = planted.split.test
    assert method.name == name
    for target in TARGETS:
        scores = _scores(method, test, target)
        assert scores.shape == (len(test), planted.catalog.size(target))
        assert np.isfinite(scores).all()
        # rows follow the instances: a batch is those rows, reordered instances reorder rows
        # (to float32 rounding: als / bpr score a batch with one BLAS call, whose rounding
        # depends on the batch)
        part = np.asarray(method.score(test, slice(5, 17), target))
        np.testing.assert_allclose(part, scores[5:17], rtol=1e-5, atol=1e-6)
        order = np.arange(len(test))[::-1].copy()
        np.testing.assert_allclose(_scores(method, test.take(order), target), scores[order],
                                   rtol=1e-5, atol=1e-6)


def test_finds_the_planted_answer(fitted: tuple[str, Method], planted: Planted) -> None:
    name, method = fitted
    test, catalog = planted.split.test, planted.catalog
    scores = _scores(method, test, "item")
    ranking = np.argsort(-scores, axis=1, kind="stable")
    last = test.hist_item[test.hist_offsets[1:] - 1]
    want = catalog.item_index(np.array([successor(int(i)) for i in last]))
    expect = EXPECT[name]
    if expect == "popular":
        assert np.all(ranking[:, 0] == catalog.item_index(np.array([HOT]))[0])
        assert np.all(scores == scores[0])  # the same for every user
        return
    top = ranking[:, 0] == want
    if expect == "successor":
        assert top.mean() >= 0.9, f"{name}: successor first for {top.mean():.0%} of users"
    else:  # the user's own chain first ("history": the successor last of it)
        chain_of = (catalog.items[ranking[:, :CHAIN]] - 1) // CHAIN
        own = np.all(chain_of == ((last - 1) // CHAIN)[:, None], axis=1)
        assert own.mean() >= 0.9, f"{name}: own chain first for {own.mean():.0%} of users"
        if expect == "history":
            assert own.all() and (ranking[:, CHAIN - 1] == want).mean() >= 0.9
    categories = _scores(method, test, "category")
    hit = np.argmax(categories, axis=1) == catalog.category_index(test.target_category)
    assert hit.mean() >= 0.9, f"{name}: next category first for {hit.mean():.0%} of users"


def test_deterministic_under_a_seed(fitted: tuple[str, Method], planted: Planted) -> None:
    name, method = fitted
    again = _fit(name, planted)
    for target in TARGETS:
        np.testing.assert_array_equal(_scores(again, planted.split.test, target),
                                      _scores(method, planted.split.test, target))


def test_no_future_events_are_used(fitted: tuple[str, Method], planted: Planted) -> None:
    _, method = fitted
    test, future = planted.split.test, planted.future.test
    assert future.rel_item is not None and test.rel_item is not None
    assert len(future.rel_item) > len(test.rel_item)  # the later events are in the test period
    n = len(test)
    garbage = dataclasses.replace(
        test, target_item=np.full(n, HOT, np.int32), target_category=np.zeros(n, np.int32),
        target_ts=np.full(n, T0, np.int64), rel_offsets=np.arange(n + 1, dtype=np.int64),
        rel_item=np.full(n, HOT, np.int32), rel_category=np.zeros(n, np.int32))
    for target in TARGETS:
        scores = _scores(method, test, target)
        np.testing.assert_array_equal(_scores(method, future, target), scores)
        np.testing.assert_array_equal(_scores(method, garbage, target), scores)
