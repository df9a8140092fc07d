"""Matrix factorisation from the optional `implicit` package as evaluation methods: `als`, `bpr`.

`implicit` is NOT a dependency of recsys-db: `pip install implicit` to use these methods.
Without it `FACTORIZATION_METHODS` are still known names, but constructing one raises an
ImportError that says so (and `recsys-db eval` reports it as a clear error).

Both methods fit one model per target (user x item for "item", user x known category for
"category") on the split's training events only. The matrix cell (user, column) is the sum of
the behaviour weights of the user's training events on that column (pv 1, fav 2, cart 3, buy 4:
the defaults of `recsys.behavior_types`). Columns never seen in training have no factors and
rank last (`UNSCORABLE`); so do catalog items for a method that was never fitted on them.

* `als` (implicit's AlternatingLeastSquares, Hu/Koren/Volinsky): confidence = alpha * weight
  sum (implicit's convention: cells absent from the matrix have confidence 1, preference 0).
  An instance's user vector is FOLDED IN from its history - the exact least-squares solve
  against the fixed item factors that ALS itself does, over the last `last` history events
  (None: all of them) - so events after training (the validation period of the time split,
  the validation event of leave-one-out) count, and users unseen in training are scored too.
* `bpr` (implicit's BayesianPersonalizedRanking; it samples positives among the non-zero
  cells, so behaviour weights only decide what is positive). Query vector: `last=None` uses
  the user's trained factor (item bias only for a user without training events); `last=N`
  uses the recency-weighted mean (1/(1 + recency), like `item_knn`) of the item factors of the
  last N history events, plus the item bias - "items like the ones just viewed".

Hyper-parameters: `fit_grid` (model settings, one fit each) x `query_grid` (scoring settings,
no refit). With validation instances (the split's `valid`, as `recsys-db eval` passes them),
each target picks the pair with the best validation NDCG@10 - the test part is never looked
at; without them the first pair is used. `trials[target]` keeps every validation result and
`selected[target]` the choice. Scores get + 1e-6 * popularity tiebreak (in [0, 1)) so that a
user vector of zeros falls back to popularity instead of the random tie order.

Opt-in (`recsys-db eval --methods als,bpr`; not in the default set): each grid takes minutes.
On the Taobao sample (814 users, 55k items) every ALS / BPR hit at 10 was an item already in
the user's own history (new-to-user HR@10 = 0 on both splits); 54-69 % of test targets are items
unseen in training, which no factor model can score.
"""

from __future__ import annotations

import importlib
import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_db.evaluation.catalog import TARGETS, Catalog
from recsys_db.evaluation.splits import Instances
from recsys_db.sequences import BEHAVIOR_WEIGHTS, EventLog

FACTORIZATION_METHODS = ("als", "bpr")
INSTALL_HINT = "pip install implicit"
UNSCORABLE = -1e30
VALID_METRIC = "NDCG@10"


def implicit_available() -> bool:
    """True when the optional `implicit` package can be imported."""
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


def require_implicit() -> None:
    """Raise an ImportError naming the install command when `implicit` is missing."""
    if not implicit_available():
        raise ImportError(f"the als / bpr methods need the optional package implicit: "
                          f"{INSTALL_HINT}")


def _grid(**axes: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    names = list(axes)
    return tuple(dict(zip(names, values, strict=True))
                 for values in itertools.product(*axes.values()))


class _Factorization:
    """Shared plumbing: per target, build the weight matrix, fit the grid, select on `valid`."""

    name = "base"
    model_class = ""  # "module:Class" of implicit's model; fit-grid keys are its keywords
    default_fit_grid: tuple[dict[str, Any], ...] = ()
    default_query_grid: tuple[dict[str, Any], ...] = ({"last": None},)

    def __init__(self, valid: Instances | None = None, *,
                 fit_grid: Sequence[Mapping[str, Any]] | None = None,
                 query_grid: Sequence[Mapping[str, Any]] | None = None,
                 threads: int = 1, seed: int = 0,
                 behavior_weights: Mapping[int, float] = BEHAVIOR_WEIGHTS,
                 batch_size: int = 256) -> None:
        require_implicit()
        self.valid = valid
        self.fit_grid = [dict(p) for p in (fit_grid or self.default_fit_grid)]
        self.query_grid = [dict(p) for p in (query_grid or self.default_query_grid)]
        if not self.fit_grid or not self.query_grid:
            raise ValueError(f"{self.name}: empty hyper-parameter grid")
        self.threads = threads
        self.seed = seed
        self.behavior_weights = dict(behavior_weights)
        self.batch_size = batch_size
        self.selected: dict[str, dict[str, Any]] = {}
        self.trials: dict[str, list[dict[str, Any]]] = {}
        self._catalog: Catalog | None = None
        self._state: dict[str, dict[str, Any]] = {}

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, train: EventLog, catalog: Catalog) -> None:
        from threadpoolctl import threadpool_limits

        from recsys_db.evaluation.runner import metrics_on

        self._catalog = catalog
        self._state = {}
        tune = self.valid is not None and len(self.valid) > 0
        with threadpool_limits(limits=self.threads, user_api="blas"):
            for target in TARGETS:
                data = self._matrix(train, catalog, target)
                trials: list[dict[str, Any]] = []
                best: tuple[float, dict[str, Any]] | None = None
                for fit_params in self.fit_grid:
                    started = time.perf_counter()
                    model = self._fit_model(data["matrix"], fit_params)
                    fit_s = time.perf_counter() - started
                    for query in self.query_grid:
                        state = {**data, "model": model, "fit": fit_params, "query": query}
                        if not tune:
                            best = (0.0, state)
                            break
                        self._state[target] = state
                        assert self.valid is not None
                        result = metrics_on(self.valid, self, catalog, target, k=10,
                                            batch_size=self.batch_size)
                        trials.append({**fit_params, **query, "fit_s": round(fit_s, 2),
                                       **{f"valid_{m}": result[m]
                                          for m in ("HR@10", "NDCG@10", "MRR@10")}})
                        if best is None or result[VALID_METRIC] > best[0]:
                            best = (result[VALID_METRIC], state)
                    if not tune:
                        break
                assert best is not None
                self._state[target] = best[1]
                self.selected[target] = {**best[1]["fit"], **best[1]["query"]}
                self.trials[target] = trials

    def _matrix(self, train: EventLog, catalog: Catalog, target: str) -> dict[str, Any]:
        """Users x model columns weight matrix; model columns = catalog columns seen in train."""
        keys = train.item if target == "item" else train.category
        cols = catalog.index(target, keys)
        keep = cols >= 0
        model_cols, cols = np.unique(cols[keep], return_inverse=True)
        users, rows = np.unique(train.user[keep], return_inverse=True)
        weights = self._weights(train.behavior[keep])
        matrix = sp.csr_matrix((weights, (rows, cols)),
                               shape=(len(users), len(model_cols)), dtype=np.float32)
        matrix.sum_duplicates()
        to_model = np.full(catalog.size(target), -1, dtype=np.int64)
        to_model[model_cols] = np.arange(len(model_cols))
        pop = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
        return {"matrix": matrix, "users": users.astype(np.int64), "model_cols": model_cols,
                "to_model": to_model, "tiebreak": pop / (pop.max(initial=0) + 1),
                "n": catalog.size(target)}

    def _weights(self, behavior: np.ndarray) -> np.ndarray:
        """Weight of each event's behaviour key (1.0 for a key without a weight)."""
        behavior = np.asarray(behavior, dtype=np.int64)
        lookup = np.ones(max(int(behavior.max(initial=0)), *self.behavior_weights) + 1,
                         dtype=np.float32)
        for key, weight in self.behavior_weights.items():
            lookup[key] = weight
        return lookup[behavior]

    def _fit_model(self, matrix: sp.csr_matrix, params: dict[str, Any]) -> Any:
        """implicit's `model_class` built from `params` (its constructor's keywords), fitted."""
        module, _, name = self.model_class.partition(":")
        model = getattr(importlib.import_module(module), name)(
            **params, num_threads=self.threads, random_state=self.seed)
        model.fit(matrix, show_progress=False)
        return model

    # -- scoring ---------------------------------------------------------------------------

    def score(self, instances: Instances, batch: slice, target: str) -> np.ndarray:
        if self._catalog is None or target not in self._state:
            raise RuntimeError(f"{self.name}: fit() before score()")
        state = self._state[target]
        rows, cols, weights, recency = self._history(instances, batch, target, state)
        start, stop, _ = batch.indices(len(instances))
        n_rows = stop - start
        vectors, items = self._query(state, instances.user[batch], n_rows, rows, cols, weights,
                                     recency)
        out = np.full((n_rows, state["n"]), UNSCORABLE, dtype=np.float64)
        out[:, state["model_cols"]] = (vectors @ items.T).astype(np.float64)
        out[:, state["model_cols"]] += 1e-6 * state["tiebreak"][None, :]
        return out

    def _history(self, instances: Instances, batch: slice, target: str, state: dict[str, Any]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(row, model column, behaviour weight, recency) of the batch's history events that
        have a catalog column (recency: 0 = the row's latest such event) and a model column."""
        offsets, span = instances.batch_history(batch)
        keys = instances.hist_item[span] if target == "item" else instances.hist_category[span]
        assert self._catalog is not None
        cols = self._catalog.index(target, keys)
        rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        known = cols >= 0
        rows, cols = rows[known], cols[known]
        weights = self._weights(instances.hist_behavior[span][known])
        counts = np.bincount(rows, minlength=len(offsets) - 1)
        ends = np.cumsum(counts)
        recency = np.repeat(ends, counts) - 1 - np.arange(len(rows))
        model = state["to_model"][cols]
        seen = model >= 0
        return rows[seen], model[seen], weights[seen], recency[seen]

    def _query(self, state: dict[str, Any], users: np.ndarray, n_rows: int, rows: np.ndarray,
               cols: np.ndarray, weights: np.ndarray, recency: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """(n_rows, d) query vectors and (n_model_cols, d) item vectors."""
        raise NotImplementedError


class ALS(_Factorization):
    """implicit's ALS; user vectors folded in from each instance's (recent) history."""

    name = "als"
    model_class = "implicit.cpu.als:AlternatingLeastSquares"
    default_fit_grid = _grid(factors=(32, 64, 128), regularization=(0.1, 1.0, 10.0),
                             alpha=(1.0, 10.0, 40.0), iterations=(20,))
    default_query_grid = ({"last": None}, {"last": 20}, {"last": 5})

    def _query(self, state: dict[str, Any], users: np.ndarray, n_rows: int, rows: np.ndarray,
               cols: np.ndarray, weights: np.ndarray, recency: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        last = state["query"]["last"]
        if last is not None:
            keep = recency < last
            rows, cols, weights = rows[keep], cols[keep], weights[keep]
        model = state["model"]
        history = sp.csr_matrix((weights, (rows, cols)),
                                shape=(n_rows, model.item_factors.shape[0]), dtype=np.float32)
        history.sum_duplicates()
        vectors = model.recalculate_user(np.arange(n_rows), history)
        return vectors, model.item_factors


class BPR(_Factorization):
    """implicit's BPR; query = trained user factor, or the mean factor of recent items."""

    name = "bpr"
    model_class = "implicit.cpu.bpr:BayesianPersonalizedRanking"
    default_fit_grid = _grid(factors=(32, 64, 128), learning_rate=(0.01, 0.05),
                             regularization=(0.001, 0.01), iterations=(100, 400))
    default_query_grid = ({"last": None}, {"last": 20}, {"last": 5})

    def _query(self, state: dict[str, Any], users: np.ndarray, n_rows: int, rows: np.ndarray,
               cols: np.ndarray, weights: np.ndarray, recency: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        model = state["model"]
        items = model.item_factors  # last column: item bias (user factors carry a 1 there)
        dim = items.shape[1]
        last = state["query"]["last"]
        vectors = np.zeros((n_rows, dim), dtype=items.dtype)
        vectors[:, -1] = 1.0
        if last is None:
            position = np.searchsorted(state["users"], users)
            position = np.minimum(position, max(len(state["users"]) - 1, 0))
            known = (state["users"][position] == users) if len(state["users"]) else \
                np.zeros(n_rows, dtype=bool)
            vectors[known] = model.user_factors[position[known]]
            return vectors, items
        keep = recency < last
        rows, cols, recency = rows[keep], cols[keep], recency[keep]
        w = (1.0 / (1.0 + recency)).astype(items.dtype)
        sums = np.zeros((n_rows, dim - 1), dtype=np.float64)
        np.add.at(sums, rows, w[:, None] * items[cols, :-1])
        total = np.bincount(rows, weights=w, minlength=n_rows)
        vectors[:, :-1] = sums / np.maximum(total, 1e-12)[:, None]
        return vectors, items


FACTORIZATION: dict[str, type[_Factorization]] = {cls.name: cls for cls in (ALS, BPR)}


def make_factorization(name: str, valid: Instances | None = None, **kwargs: Any
                       ) -> _Factorization:
    """A fresh `als` / `bpr` method (ImportError naming `pip install implicit` without it)."""
    if name not in FACTORIZATION:
        raise ValueError(f"unknown factorisation method {name!r}: {list(FACTORIZATION)}")
    return FACTORIZATION[name](valid, **kwargs)
