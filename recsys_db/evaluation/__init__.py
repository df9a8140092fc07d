"""Offline evaluation: splits, full-ranking metrics, built-in baselines and a runner.

    log = read_events_csv("events.csv")            # or sequences.load_event_log(conn)
    catalog = Catalog.from_log(log)                # candidates: every item / known category
    split = leave_one_out(log)                     # or time_split(log, 0.1)
    rows = evaluate(all_baselines(), split, catalog, k=10)
    print(format_table(rows))
"""

from recsys_db.evaluation.baselines import (
    BASELINES,
    ItemKNN,
    Markov,
    Method,
    MostPopular,
    PopularLastDay,
    Repeat,
    all_baselines,
)
from recsys_db.evaluation.catalog import TARGETS, Catalog
from recsys_db.evaluation.data import events_from_frame, read_events_csv
from recsys_db.evaluation.metrics import (
    metrics_from_ranks,
    ranks,
    relevant_ranks,
    set_metrics,
    tie_order,
)
from recsys_db.evaluation.runner import Outcomes, evaluate, format_table, metrics_on, outcomes_on
from recsys_db.evaluation.splits import (
    Instances,
    Split,
    fraction_cutoffs,
    leave_one_out,
    split_at,
    time_split,
)
from recsys_db.evaluation.tokens import TokenSequences, history_tokens, train_tokens

__all__ = [
    "BASELINES", "TARGETS", "Catalog", "Instances", "ItemKNN", "Markov", "Method", "MostPopular",
    "Outcomes", "PopularLastDay", "Repeat", "Split", "TokenSequences", "all_baselines",
    "evaluate", "events_from_frame", "format_table", "fraction_cutoffs", "history_tokens",
    "leave_one_out", "metrics_from_ranks", "metrics_on", "outcomes_on", "ranks",
    "read_events_csv", "relevant_ranks", "set_metrics", "split_at", "tie_order", "time_split",
    "train_tokens",
]
