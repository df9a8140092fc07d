"""Run methods over a split: fit once on `split.train`, rank every test target against the whole
catalog, report HR/NDCG/MRR@k, Precision/Recall@k and AUC per (method, target), optionally
broken down by history length and target kind (`breakdown.py`); plus a plain-text table.

`outcomes_on` ranks one fitted method's targets on any `Instances`, `metrics_on` summarises
them (e.g. on `split.valid` for early stopping of a learned model); `evaluate` does fit + test
for a list of methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_db.evaluation.baselines import Method
from recsys_db.evaluation.breakdown import groups
from recsys_db.evaluation.catalog import Catalog
from recsys_db.evaluation.metrics import (
    metrics_from_ranks,
    ranks,
    relevant_ranks,
    set_metrics,
    tie_order,
)
from recsys_db.evaluation.splits import Instances, Split
from recsys_db.evaluation.tokens import history_tokens

Progress = Callable[[str, int, int], Any]  # (label, instances done, instances total)


@dataclass
class Outcomes:
    """Per-instance results of one method on one target, for the instances scored (`scored`):
    rank of the target, ranks of the relevant (row, column) pairs (`rel_rows` index the scored
    instances), AUC of each instance."""

    scored: Instances
    rank: np.ndarray
    rel_rows: np.ndarray
    rel_rank: np.ndarray
    auc: np.ndarray

    def metrics(self, k: int | Iterable[int] = 10, mask: np.ndarray | None = None
                ) -> dict[str, float]:
        """Every metric over the instances (those where `mask` is True), plus "instances"."""
        if mask is None:
            mask = np.ones(len(self.rank), dtype=bool)
        keep = mask[self.rel_rows]
        renumber = np.cumsum(mask) - 1
        out = metrics_from_ranks(self.rank[mask], k)
        out.update(set_metrics(self.rel_rank[keep], renumber[self.rel_rows[keep]],
                               self.auc[mask], k))
        out["instances"] = int(mask.sum())
        return out


def outcomes_on(instances: Instances, method: Method, catalog: Catalog, target: str = "item",
                *, exclude_seen: bool = False, batch_size: int = 256, tie_seed: int = 0,
                progress: Progress | None = None) -> Outcomes:
    """Rank the targets and relevant candidates of a FITTED method on `instances`.

    Target "category": instances whose target category is unknown (0) are skipped, and unknown
    categories are never relevant. exclude_seen: candidates in the instance's history are
    dropped from the ranking, except the target and the relevant ones (see `metrics.py`).
    """
    columns = catalog.index(target, instances.target_item if target == "item"
                            else instances.target_category)
    if target == "item" and (columns < 0).any():
        raise ValueError("a target item is not in the catalog (build it from the full log)")
    if (columns < 0).any():
        keep = columns >= 0
        instances, columns = instances.take(keep), columns[keep]
    n_cols = catalog.size(target)
    tie_position = tie_order(n_cols, tie_seed)
    rel_offsets, rel_keys = instances.relevant(target)
    rel_columns = catalog.index(target, rel_keys)
    label = f"{method.name}/{target}"
    parts: list[tuple[np.ndarray, ...]] = []
    for lo in range(0, len(instances), batch_size):
        batch = slice(lo, min(lo + batch_size, len(instances)))
        scores = method.score(instances, batch, target)
        if scores.shape != (batch.stop - lo, n_cols):
            raise ValueError(f"{method.name}.score returned shape {scores.shape}, expected "
                             f"{(batch.stop - lo, n_cols)}")
        exclude = _seen_mask(instances, batch, catalog, target) if exclude_seen else None
        rows, cols = _relevant_pairs(columns[batch], rel_offsets[lo:batch.stop + 1],
                                     rel_columns, n_cols)
        rel_rank, auc = relevant_ranks(scores, rows, cols, tie_position, exclude)
        parts.append((ranks(scores, columns[batch], tie_position, exclude), rows + lo,
                      rel_rank, auc))
        if progress is not None:
            progress(label, batch.stop, len(instances))
    if not parts:
        empty = np.array([], dtype=np.int64)
        return Outcomes(instances, empty, empty, empty, np.array([], dtype=np.float64))
    rank, rel_rows, rel_rank, auc = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Outcomes(instances, rank, rel_rows, rel_rank, auc)


def metrics_on(instances: Instances, method: Method, catalog: Catalog, target: str = "item", *,
               k: int | Iterable[int] = 10, exclude_seen: bool = False, batch_size: int = 256,
               tie_seed: int = 0, progress: Progress | None = None) -> dict[str, float]:
    """HR/NDCG/MRR@k, Precision/Recall@k and AUC of a FITTED method on `instances`, plus
    "instances" (how many counted); see `outcomes_on`."""
    return outcomes_on(instances, method, catalog, target, exclude_seen=exclude_seen,
                       batch_size=batch_size, tie_seed=tie_seed, progress=progress).metrics(k)


def evaluate(methods: Sequence[Method], split: Split, catalog: Catalog, *,
             targets: Sequence[str] = ("item", "category"), k: int | Iterable[int] = 10,
             exclude_seen: bool = False, batch_size: int = 256, progress: Progress | None = None,
             fit: bool = True, on: str = "test", tie_seed: int = 0,
             breakdown: bool = False) -> list[dict[str, Any]]:
    """Fit each method on `split.train` (unless fit=False: already fitted) and evaluate it on
    `split.test` (or `split.valid` with on="valid") for each target.

    Rows: {"method", "target", "HR@k", "NDCG@k", "MRR@k", "Precision@k", "Recall@k", "AUC",
    "instances", "fit_s", "score_s"}; with breakdown=True also "breakdown": a list of rows
    {"method", "target", "by", "group", metrics..., "instances"}, one per group of
    `breakdown.groups`.
    """
    instances = {"test": split.test, "valid": split.valid}[on]
    ks = [k] if isinstance(k, int) else list(k)
    rows = []
    for method in methods:
        started = time.perf_counter()
        if fit:
            method.fit(split.train, catalog)
        fit_s = time.perf_counter() - started
        for target in targets:
            started = time.perf_counter()
            outcomes = outcomes_on(instances, method, catalog, target,
                                   exclude_seen=exclude_seen, batch_size=batch_size,
                                   tie_seed=tie_seed, progress=progress)
            row: dict[str, Any] = {"method": method.name, "target": target,
                                   **outcomes.metrics(ks), "fit_s": fit_s,
                                   "score_s": time.perf_counter() - started}
            if breakdown:
                row["breakdown"] = [
                    {"method": method.name, "target": target, "by": by, "group": group,
                     **outcomes.metrics(ks, mask)}
                    for by, group, mask in groups(outcomes.scored, target)]
            rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of result rows: one column per key (first-seen order), floats .4f."""
    if not rows:
        return "(no results)"
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    cells = [[_cell(col, row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    numeric = [all(isinstance(row.get(col), int | float) for row in rows) for col in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule, *(line(r) for r in cells)])


def _cell(column: str, value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if column.endswith("_s") else f"{value:.4f}"
    return str(value)


def _relevant_pairs(targets: np.ndarray, rel_offsets: np.ndarray, rel_columns: np.ndarray,
                    n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (row, column) relevant pairs of a batch, sorted: each row's target column and
    the known columns of its relevant events (`rel_offsets`: the batch's n + 1 offsets)."""
    lengths = np.diff(rel_offsets)
    cols = rel_columns[rel_offsets[0]:rel_offsets[-1]]
    rows = np.repeat(np.arange(len(targets)), lengths)
    known = cols >= 0
    cells = np.unique(np.r_[np.arange(len(targets)) * n_cols + targets,
                            rows[known] * n_cols + cols[known]])
    return cells // n_cols, cells % n_cols


def _seen_mask(instances: Instances, batch: slice, catalog: Catalog, target: str) -> np.ndarray:
    seqs = history_tokens(instances, batch, catalog, target)
    mask = np.zeros((len(seqs), catalog.size(target)), dtype=bool)
    mask[seqs.sequence_id(), seqs.tokens] = True
    return mask
