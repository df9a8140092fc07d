"""The `Method` protocol shared by baselines and learned models, and five built-in baselines.

Every baseline works on token sequences (see `tokens.py`), so the same logic serves both
targets: on item sequences for target "item", on (known) category sequences for target
"category". All are fit on the training log only; at scoring time they read each instance's
history as input.

Baselines (scores are float64, higher = better; "pop" = training count of the token,
"tiebreak" = pop / (max pop + 1), in [0, 1)):

* `most_popular`: pop.
* `popular_last_day`: count over the last 24 h of the training log (ts >= max train ts -
  86400) + tiebreak (items unseen that day are ordered by overall popularity).
* `repeat`: history tokens first, most recent first (score = 1 + position of the token's last
  occurrence in the history), then every other token by popularity (+ tiebreak): "repeat,
  then popular".
* `markov`: first-order transitions a -> b counted over consecutive training events of the
  same user (self-transitions a -> a included); score = count(last -> j) + tiebreak.
* `item_knn`: co-occurrence counts of token pairs within +-`window` events of the same user's
  training sequence, cosine-normalised count / sqrt(pop_i * pop_j); score = sum over the last
  `last` history tokens, weighted 1/(1 + recency), of similarity + 1e-6 * tiebreak. Pairs of
  the same token count too, so sim(i, i) is learnt (how often i is re-viewed nearby) instead
  of being fixed at 1 or 0: on Taobao this lifts category HR@10 from 0.19 to 0.56 (LOO).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recsys_db.evaluation.catalog import TARGETS, Catalog
from recsys_db.evaluation.splits import SECONDS_PER_DAY, Instances
from recsys_db.evaluation.tokens import (
    TokenSequences,
    history_tokens,
    last_tokens_matrix,
    train_tokens,
)
from recsys_db.sequences import EventLog


@runtime_checkable
class Method(Protocol):
    """Anything that can be evaluated: fit once on training events, then score instances."""

    name: str

    def fit(self, train: EventLog, catalog: Catalog) -> None:
        """Learn from `train` only; `catalog` fixes the candidates (score columns)."""
        ...

    def score(self, instances: Instances, batch: slice, target: str) -> np.ndarray:
        """(len(batch), catalog.size(target)) scores for the instances in `batch` (step 1),
        columns aligned with `catalog.items` / `catalog.categories`; higher = better.
        The evaluator only reads the array (a broadcast view is fine)."""
        ...


class _TokenBaseline:
    """Shared plumbing: fit `_fit_target` per target on training tokens, score histories."""

    name = "base"

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._state: dict[str, dict[str, Any]] = {}

    def fit(self, train: EventLog, catalog: Catalog) -> None:
        self._catalog = catalog
        self._state = {}
        for target in TARGETS:
            seqs = train_tokens(train, catalog, target)
            n = catalog.size(target)
            pop = np.bincount(seqs.tokens, minlength=n).astype(np.float64)
            tiebreak = pop / (pop.max(initial=0) + 1)
            state: dict[str, Any] = {"n": n, "pop": pop, "tiebreak": tiebreak,
                                     "max_ts": int(train.ts.max(initial=0))}
            state.update(self._fit_target(seqs, state))
            self._state[target] = state

    def score(self, instances: Instances, batch: slice, target: str) -> np.ndarray:
        if self._catalog is None:
            raise RuntimeError(f"{self.name}: fit() before score()")
        seqs = history_tokens(instances, batch, self._catalog, target)
        return self._score_target(seqs, self._state[target])

    def _fit_target(self, seqs: TokenSequences, state: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _score_target(self, seqs: TokenSequences, state: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError


class MostPopular(_TokenBaseline):
    """Training counts, the same for every user."""

    name = "most_popular"

    def _score_target(self, seqs: TokenSequences, state: dict[str, Any]) -> np.ndarray:
        return np.broadcast_to(state["pop"], (len(seqs), state["n"]))


class PopularLastDay(_TokenBaseline):
    """Counts over the last 24 h of the training log, overall popularity as tie-breaker."""

    name = "popular_last_day"

    def _fit_target(self, seqs: TokenSequences, state: dict[str, Any]) -> dict[str, Any]:
        recent = seqs.ts >= state["max_ts"] - SECONDS_PER_DAY
        counts = np.bincount(seqs.tokens[recent], minlength=state["n"]).astype(np.float64)
        return {"recent": counts + state["tiebreak"]}

    def _score_target(self, seqs: TokenSequences, state: dict[str, Any]) -> np.ndarray:
        return np.broadcast_to(state["recent"], (len(seqs), state["n"]))


class Repeat(_TokenBaseline):
    """The user's own history, most recent first, then the rest by popularity."""

    name = "repeat"

    def _score_target(self, seqs: TokenSequences, state: dict[str, Any]) -> np.ndarray:
        n = state["n"]
        scores = np.tile(state["tiebreak"], (len(seqs), 1))
        position = np.arange(len(seqs.tokens)) - np.repeat(seqs.offsets[:-1], seqs.lengths())
        flat = seqs.sequence_id() * n + seqs.tokens
        # the last occurrence of each (row, token) = the first one in reversed order
        cells, first = np.unique(flat[::-1], return_index=True)
        scores.reshape(-1)[cells] += 1 + position[::-1][first]
        return scores


class Markov(_TokenBaseline):
    """First-order transition counts from the last history token."""

    name = "markov"

    def _fit_target(self, seqs: TokenSequences, state: dict[str, Any]) -> dict[str, Any]:
        a, b = seqs.pairs(1)
        n = state["n"]
        counts = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        counts.sum_duplicates()
        return {"transitions": counts}

    def _score_target(self, seqs: TokenSequences, state: dict[str, Any]) -> np.ndarray:
        last = last_tokens_matrix(seqs, np.ones(1), state["n"])
        return (last @ state["transitions"]).toarray() + state["tiebreak"]


class ItemKNN(_TokenBaseline):
    """Cosine co-occurrence neighbours of the last few history tokens."""

    name = "item_knn"

    def __init__(self, window: int = 5, last: int = 5) -> None:
        super().__init__()
        self.window = window
        self.last = last

    def _fit_target(self, seqs: TokenSequences, state: dict[str, Any]) -> dict[str, Any]:
        n, pop = state["n"], state["pop"]
        pairs = [seqs.pairs(gap) for gap in range(1, self.window + 1)]
        a = np.concatenate([p[0] for p in pairs])
        b = np.concatenate([p[1] for p in pairs])
        rows, cols = np.r_[a, b], np.r_[b, a]
        co = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        co.sum_duplicates()
        norm = np.sqrt(np.maximum(pop, 1.0))
        sim = sp.diags(1.0 / norm) @ co @ sp.diags(1.0 / norm)
        return {"similarity": sp.csr_matrix(sim)}

    def _score_target(self, seqs: TokenSequences, state: dict[str, Any]) -> np.ndarray:
        weights = 1.0 / (1.0 + np.arange(self.last))
        query = last_tokens_matrix(seqs, weights, state["n"])
        return (query @ state["similarity"]).toarray() + 1e-6 * state["tiebreak"]


BASELINES: dict[str, type[_TokenBaseline]] = {
    cls.name: cls for cls in (MostPopular, PopularLastDay, Repeat, Markov, ItemKNN)
}


def all_baselines() -> list[Method]:
    """A fresh instance of every built-in baseline, in a fixed order."""
    return [cls() for cls in BASELINES.values()]
