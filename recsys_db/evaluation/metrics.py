"""Full-ranking metrics: the target is ranked against EVERY candidate (no sampled negatives).

Rank of the target in a row of scores::

    rank = 1 + #(candidates scoring strictly higher than the target)
             + #(candidates scoring exactly the same that precede the target in a fixed,
                 seeded random permutation of the candidates)

The tie rule makes ties neither free (optimistic "ties count as below") nor fatal
(pessimistic "ties count as above"): a method that gives 1000 items the same score gets, on
average, the middle of that block, as it would by breaking ties at random - but reproducibly,
because the permutation (`tie_order`) is fixed by a seed and shared by all methods.

Excluding seen items (`exclude`): excluded candidates are removed from the ranking (counted
neither above nor tied); the target itself is never removed, even when it appears in the
history, so it stays scorable.

HR@k = [rank <= k]; NDCG@k = [rank <= k] / log2(rank + 1); MRR@k = [rank <= k] / rank, each
averaged over instances. Scores must not be NaN at the target (a ValueError is raised).

Set metrics, over an instance's RELEVANT candidates R (the target alone, or every distinct item
of the user's test period; relevant candidates are never excluded), each relevant one ranked
by the same rule among all candidates:

* Precision@k = |R in the top k| / k;  Recall@k = |R in the top k| / |R|;
* AUC = over the pairs (r in R, non-relevant candidate c): the fraction with c ranked below r
  (non-relevant = candidates not in R and not excluded).

With a single target they reduce to HR@k / k, HR@k and (n - rank) / (n - 1), n = candidates.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

METRICS = ("HR", "NDCG", "MRR")
_CHUNK = 128  # targets compared per block (a block of scores is copied when rows are given)


def tie_order(n_candidates: int, seed: int = 0) -> np.ndarray:
    """Position of each candidate in a seeded random permutation (the tie-break priority:
    lower position ranks first among equal scores)."""
    position = np.empty(n_candidates, dtype=np.int64)
    position[np.random.default_rng(seed).permutation(n_candidates)] = np.arange(n_candidates)
    return position


def ranks(scores: np.ndarray, targets: np.ndarray, tie_position: np.ndarray,
          exclude: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of each target column in its row of scores, under the tie rule above.

    scores: (n, m) floats; targets: (p,) column indices; rows: (p,) the row of each target
    (default: target i in row i, p = n; a row may have several targets); tie_position: (m,)
    from `tie_order`; exclude: optional (n, m) bool, True = drop the candidate (ignored at the
    target).
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64)
    expected = (scores.shape[0],) if rows is None else rows.shape
    if targets.shape != expected or tie_position.shape != (scores.shape[1],):
        raise ValueError("scores, targets and tie_position do not fit together")
    out = np.empty(len(targets), dtype=np.int64)
    for lo in range(0, len(targets), _CHUNK):
        hi = min(lo + _CHUNK, len(targets))
        where: slice | np.ndarray = slice(lo, hi) if rows is None else rows[lo:hi]
        block, cols = scores[where], targets[lo:hi]
        target_score = block[np.arange(hi - lo), cols][:, None]
        if np.isnan(target_score).any():
            raise ValueError("NaN score at a target")
        above = block > target_score
        above |= (block == target_score) & (tie_position[None, :] < tie_position[cols][:, None])
        if exclude is not None:
            above &= ~exclude[where]
        out[lo:hi] = 1 + above.sum(axis=1)  # the target is never "above" itself
    return out


def relevant_ranks(scores: np.ndarray, rel_rows: np.ndarray, rel_cols: np.ndarray,
                   tie_position: np.ndarray, exclude: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(1-based rank of each relevant (row, column) pair, AUC of each row).

    Pairs must be distinct; every row needs at least one. Relevant candidates are never
    excluded. A row without any non-relevant candidate gets AUC 0.5.
    """
    rel_rows = np.asarray(rel_rows, dtype=np.int64)
    rel_cols = np.asarray(rel_cols, dtype=np.int64)
    n, m = scores.shape
    if exclude is not None:
        exclude = exclude.copy()
        exclude[rel_rows, rel_cols] = False
    rank = ranks(scores, rel_cols, tie_position, exclude, rows=rel_rows)
    # ranks are a total order, so the relevant candidates above a pair are those of its row
    # with a smaller rank: its position among them
    order = np.lexsort((rank, rel_rows))
    n_rel = np.bincount(rel_rows, minlength=n)
    if (n_rel == 0).any():
        raise ValueError("every row needs a relevant candidate")
    first = np.repeat(np.cumsum(n_rel) - n_rel, n_rel)
    rel_above = np.empty(len(rank), dtype=np.int64)
    rel_above[order] = np.arange(len(rank)) - first
    n_candidates = m - (exclude.sum(axis=1) if exclude is not None else 0)
    n_other = (n_candidates - n_rel)[rel_rows]
    below = n_other - (rank - 1 - rel_above)
    pair_auc = np.divide(below, n_other, out=np.full(len(rank), 0.5), where=n_other > 0)
    return rank, np.bincount(rel_rows, weights=pair_auc, minlength=n) / n_rel


def set_metrics(rel_rank: np.ndarray, rel_rows: np.ndarray, auc: np.ndarray,
                k: int | Iterable[int] = 10) -> dict[str, float]:
    """Mean Precision@k, Recall@k (over `len(auc)` rows whose relevant pairs have ranks
    `rel_rank` and rows `rel_rows`) and mean AUC; 0.0 each when there are no rows."""
    n = len(auc)
    n_rel = np.bincount(rel_rows, minlength=n)
    out: dict[str, float] = {}
    for cut in ([k] if isinstance(k, int) else list(k)):
        hits = np.bincount(rel_rows, weights=rel_rank <= cut, minlength=n)
        out[f"Precision@{cut}"] = float((hits / cut).mean()) if n else 0.0
        out[f"Recall@{cut}"] = float((hits / np.maximum(n_rel, 1)).mean()) if n else 0.0
    out["AUC"] = float(np.mean(auc)) if n else 0.0
    return out


def metrics_from_ranks(rank: np.ndarray, k: int | Iterable[int] = 10) -> dict[str, float]:
    """Mean HR@k, NDCG@k, MRR@k of 1-based ranks (0.0 each when there are no ranks)."""
    rank = np.asarray(rank, dtype=np.float64)
    out: dict[str, float] = {}
    for cut in ([k] if isinstance(k, int) else list(k)):
        hit = rank <= cut
        if not len(rank):
            out.update({f"{name}@{cut}": 0.0 for name in METRICS})
            continue
        out[f"HR@{cut}"] = float(hit.mean())
        out[f"NDCG@{cut}"] = float(np.where(hit, 1.0 / np.log2(rank + 1.0), 0.0).mean())
        out[f"MRR@{cut}"] = float(np.where(hit, 1.0 / rank, 0.0).mean())
    return out
