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
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

METRICS = ("HR", "NDCG", "MRR")


def tie_order(n_candidates: int, seed: int = 0) -> np.ndarray:
    """Position of each candidate in a seeded random permutation (the tie-break priority:
    lower position ranks first among equal scores)."""
    position = np.empty(n_candidates, dtype=np.int64)
    position[np.random.default_rng(seed).permutation(n_candidates)] = np.arange(n_candidates)
    return position


def ranks(scores: np.ndarray, targets: np.ndarray, tie_position: np.ndarray,
          exclude: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of each row's target column under the tie rule above.

    scores: (n, m) floats; targets: (n,) column indices; tie_position: (m,) from `tie_order`;
    exclude: optional (n, m) bool, True = drop the candidate (ignored at the target).
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    n = scores.shape[0]
    if targets.shape != (n,) or tie_position.shape != (scores.shape[1],):
        raise ValueError("scores, targets and tie_position do not fit together")
    rows = np.arange(n)
    target_score = scores[rows, targets][:, None]
    if np.isnan(target_score).any():
        raise ValueError("NaN score at a target")
    above = scores > target_score
    above |= (scores == target_score) & (tie_position[None, :] < tie_position[targets][:, None])
    if exclude is not None:
        above &= ~exclude
    return 1 + above.sum(axis=1)  # the target is never "above" itself, excluded or not


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
