"""`python -m recsys_db.evaluation EVENTS.csv`: run the built-in baselines, print the tables."""

from __future__ import annotations

import argparse
import time

from recsys_db.evaluation import (
    BASELINES,
    Catalog,
    evaluate,
    format_table,
    leave_one_out,
    read_events_csv,
    time_split,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m recsys_db.evaluation", description=__doc__)
    parser.add_argument("events", help="CSV: user_id,item_id,category_id,behavior,ts")
    parser.add_argument("--split", choices=["loo", "time", "both"], default="both")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--exclude-seen", action="store_true")
    parser.add_argument("--methods", nargs="*", default=list(BASELINES), choices=list(BASELINES))
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    log = read_events_csv(args.events)
    catalog = Catalog.from_log(log)
    print(f"{len(log)} events, {log.n_users} users, {catalog.n_items} items, "
          f"{catalog.n_categories} categories ({time.perf_counter() - started:.1f} s)")
    splits = {"loo": [leave_one_out], "time": [time_split],
              "both": [leave_one_out, time_split]}[args.split]
    for make in splits:
        started = time.perf_counter()
        split = make(log)
        print(f"\n{split.describe()} ({time.perf_counter() - started:.2f} s)")
        methods = [BASELINES[name]() for name in args.methods]
        rows = evaluate(methods, split, catalog, k=args.k, exclude_seen=args.exclude_seen,
                        batch_size=args.batch_size)
        print(format_table(rows))


if __name__ == "__main__":
    main()
