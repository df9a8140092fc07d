"""The evaluation suite behind `recsys-db eval`: one split, every method, one table.

Every method - baselines and the encoders - is trained on the split's training part only, from
events read out of the database; nothing is written back, so the active model is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from recsys_db.evaluation.baselines import BASELINES
from recsys_db.evaluation.catalog import Catalog
from recsys_db.evaluation.factorization import (
    FACTORIZATION_METHODS,
    INSTALL_HINT,
    implicit_available,
    make_factorization,
)
from recsys_db.evaluation.learned import InterestEncoderMethod
from recsys_db.evaluation.pipeline import PIPELINE_METHODS, PipelineMethod, SqlPipeline
from recsys_db.evaluation.runner import Progress, evaluate
from recsys_db.evaluation.splits import Split, leave_one_out, time_split
from recsys_db.interest.encoder import ENCODERS
from recsys_db.interest.train import TrainConfig
from recsys_db.sequences import EventLog

SPLITS = ("leave-one-out", "time")
METHODS = (*ENCODERS, *BASELINES, *FACTORIZATION_METHODS, *PIPELINE_METHODS)


def default_methods(split_name: str) -> list[str]:
    """Every method that applies: the SQL pipeline needs the time split. `als` / `bpr` are
    opt-in (`--methods als,bpr`): they need the optional package implicit and tune a grid."""
    return [m for m in METHODS if (split_name == "time" or m not in PIPELINE_METHODS)
            and m not in FACTORIZATION_METHODS]


def make_split(log: EventLog, split_name: str, test_fraction: float | None = None,
               test_days: float | None = None) -> Split:
    """The named split of `log`; the test period options apply to the time split only."""
    if split_name not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split_name!r}")
    if split_name == "time":
        return time_split(log, test_fraction, test_days=test_days)
    if test_fraction is not None or test_days is not None:
        raise ValueError("--test-fraction and --test-days apply to --split time only")
    return leave_one_out(log)


def run_suite(log: EventLog, split_name: str, methods: Sequence[str] = METHODS, *,
              conn: Any = None, config: TrainConfig | None = None,
              exclude_seen: bool = False, k: int = 10,
              test_fraction: float | None = None, test_days: float | None = None,
              progress: Progress | None = None,
              on_epoch: Callable[[str, dict[str, float]], None] | None = None
              ) -> dict[str, Any]:
    """{"split": ..., "results": [rows], "breakdown": [group rows]} for `methods` on
    `split_name` of `log` (time split: the last `test_fraction` of events, default 0.1, or the
    last `test_days` days are the test period; see `splits.time_split`)."""
    started = time.perf_counter()
    split = make_split(log, split_name, test_fraction, test_days)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {list(METHODS)}")
    factorization = [m for m in methods if m in FACTORIZATION_METHODS]
    if factorization and not implicit_available():
        raise ValueError(f"{factorization} need the optional package implicit: {INSTALL_HINT}")
    pipeline_names = [m for m in methods if m in PIPELINE_METHODS]
    if pipeline_names and (split_name != "time" or conn is None):
        raise ValueError(f"{pipeline_names} run the SQL pipeline: they need --split time "
                         "and the database")
    catalog = Catalog.from_log(log)
    pipeline = SqlPipeline(conn, split, config) if pipeline_names else None
    chosen = []
    for name in methods:
        if name in PIPELINE_METHODS:
            assert pipeline is not None
            chosen.append(PipelineMethod(name, pipeline))
        elif name in ENCODERS:
            hook = (lambda record, n=name: on_epoch(n, record)) if on_epoch else None
            chosen.append(InterestEncoderMethod(name, config, split.valid, on_epoch=hook))
        elif name in FACTORIZATION_METHODS:  # hyper-parameters picked on split.valid
            chosen.append(make_factorization(name, split.valid))
        else:
            chosen.append(BASELINES[name]())
    rows = evaluate(chosen, split, catalog, k=k, exclude_seen=exclude_seen, progress=progress,
                    breakdown=True)
    groups = [group for row in rows for group in row.pop("breakdown")]
    return {"split": split_name, "k": k, "exclude_seen": exclude_seen,
            "description": split.describe(), "params": split.params, "results": rows,
            "breakdown": groups,
            "seconds": round(time.perf_counter() - started, 1)}
