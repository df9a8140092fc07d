"""Run methods over a split: fit once on `split.train`, rank every test target against the whole
catalog, report HR/NDCG/MRR@k per (method, target); plus a plain-text table.

`metrics_on` evaluates one fitted method on any `Instances` (e.g. `split.valid` for early
stopping of a learned model); `evaluate` does fit + test for a list of methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from recsys_db.evaluation.baselines import Method
from recsys_db.evaluation.catalog import Catalog
from recsys_db.evaluation.metrics import metrics_from_ranks, ranks, tie_order
from recsys_db.evaluation.splits import Instances, Split
from recsys_db.evaluation.tokens import history_tokens

Progress = Callable[[str, int, int], Any]  # (label, instances done, instances total)


def metrics_on(instances: Instances, method: Method, catalog: Catalog, target: str = "item", *,
               k: int | Iterable[int] = 10, exclude_seen: bool = False, batch_size: int = 256,
               tie_seed: int = 0, progress: Progress | None = None) -> dict[str, float]:
    """HR/NDCG/MRR@k of a FITTED method on `instances`, plus "instances" (how many counted).

    Target "category": instances whose target category is unknown (0) are skipped.
    exclude_seen: candidates in the instance's history are dropped from the ranking, except the
    target itself (see `metrics.py`).
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
    label = f"{method.name}/{target}"
    all_ranks = []
    for lo in range(0, len(instances), batch_size):
        batch = slice(lo, min(lo + batch_size, len(instances)))
        scores = method.score(instances, batch, target)
        if scores.shape != (batch.stop - lo, n_cols):
            raise ValueError(f"{method.name}.score returned shape {scores.shape}, expected "
                             f"{(batch.stop - lo, n_cols)}")
        exclude = _seen_mask(instances, batch, catalog, target) if exclude_seen else None
        all_ranks.append(ranks(scores, columns[batch], tie_position, exclude))
        if progress is not None:
            progress(label, batch.stop, len(instances))
    rank = np.concatenate(all_ranks) if all_ranks else np.array([], dtype=np.int64)
    out: dict[str, float] = metrics_from_ranks(rank, k)
    out["instances"] = len(rank)
    return out


def evaluate(methods: Sequence[Method], split: Split, catalog: Catalog, *,
             targets: Sequence[str] = ("item", "category"), k: int | Iterable[int] = 10,
             exclude_seen: bool = False, batch_size: int = 256, progress: Progress | None = None,
             fit: bool = True, on: str = "test", tie_seed: int = 0) -> list[dict[str, Any]]:
    """Fit each method on `split.train` (unless fit=False: already fitted) and evaluate it on
    `split.test` (or `split.valid` with on="valid") for each target.

    Rows: {"method", "target", "HR@k", "NDCG@k", "MRR@k", "instances", "fit_s", "score_s"}.
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
            result = metrics_on(instances, method, catalog, target, k=ks,
                                exclude_seen=exclude_seen, batch_size=batch_size,
                                tie_seed=tie_seed, progress=progress)
            rows.append({"method": method.name, "target": target, **result,
                         "fit_s": fit_s, "score_s": time.perf_counter() - started})
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


def _seen_mask(instances: Instances, batch: slice, catalog: Catalog, target: str) -> np.ndarray:
    seqs = history_tokens(instances, batch, catalog, target)
    mask = np.zeros((len(seqs), catalog.size(target)), dtype=bool)
    mask[seqs.sequence_id(), seqs.tokens] = True
    return mask
