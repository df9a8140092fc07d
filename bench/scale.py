"""Ten times the data: every step of recsys-db at 10M events / 1M items / 200k users, timed.

    python bench/scale.py [--events 10000000 --items 1000000 --users 200000] [--json]
    python bench/scale.py --events 1000000 --items 100000 --users 20000   # development size

Generates the synthetic log (recsys_db.synth), then on a fresh scratch database of the
configured server (embedded by default, or RECSYS_DATABASE_URL), dropped at the end, runs the
product's own jobs one after the other and times each:

  ingest       `load_events` on the CSV                 ingest_events_per_s  target >= 200,000
  interest     `train_interest`, one epoch of the default model, in its own process so its
               peak RSS is its own                      train_epoch_s, train_peak_rss_mb
                                                                             target <= 6,000 MB
  HNSW         the item-vector index that job builds, timed from another connection by
               pg_stat_progress_create_index            hnsw_build_s
  CF           `train_cf`                               cf_s
  ranker       `train_ranker` (default RankerConfig)    ranker_s             target <= 1,800 s
  serving      `recsys.recommend(user, 10)` from one connection over --queries random users
                                                        recommend_p50_ms / _p99_ms  <= 10 / 30
               pgbench at 2 and 8 clients               qps_2 (>= 150), qps_8
               the same users again after `refill` precomputed their candidates, as the
               worker keeps them for active users    recommend_precomputed_p50_ms / _p99_ms,
                                                        precompute_users_per_s
  size         pg_database_size                         db_size_mb

Each figure is printed as soon as its step ends (so a long run's log shows progress); with
--json the last line is one JSON object with every key above.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from recsys_db import synth  # noqa: E402
from recsys_db.cf import train_cf  # noqa: E402
from recsys_db.db import scratch_database  # noqa: E402
from recsys_db.ranker.train import train_ranker  # noqa: E402

TARGETS = {"ingest_events_per_s": (">=", 200_000), "train_peak_rss_mb": ("<=", 6_000),
           "ranker_s": ("<=", 1_800), "recommend_p50_ms": ("<=", 10),
           "recommend_p99_ms": ("<=", 30), "qps_2": (">=", 150)}
# The job creates the partition and its index in one transaction, so neither is in pg_class
# for another session yet (and index_relid is 0 during a non-concurrent CREATE INDEX): pgvector's
# HNSW phase name identifies the build (the partition's primary key is a btree, whose phases
# are named differently; nothing else builds indexes in the scratch database meanwhile)
HNSW_PROGRESS = """
SELECT p.pid FROM pg_stat_progress_create_index p
WHERE p.datname = current_database() AND p.phase = 'building index: loading tuples'
"""


def interest_child(url: str) -> None:
    """One epoch of the default interest model through the train-interest job; prints JSON."""
    from recsys_db.interest.train_config import TrainConfig
    from recsys_db.interest.trainer import train_interest

    with psycopg.connect(url) as conn:
        metrics = train_interest(conn, TrainConfig(epochs=1))
    print(json.dumps({"train_epoch_s": round(metrics["history"][0]["seconds"], 1),
                      "interest_job_s": metrics["seconds"],
                      "train_peak_rss_mb": common.peak_rss_mb()}))


class IndexBuildWatch(threading.Thread):
    """Polls pg_stat_progress_create_index from its own connection: how long HNSW builds of the
    item-vector partitions were seen running (to within `interval`)."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.url, self.interval, self.seconds = url, interval, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.done.is_set():
                t0 = time.perf_counter()
                if conn.execute(HNSW_PROGRESS).fetchone() is not None:
                    self.done.wait(self.interval)
                    self.seconds += time.perf_counter() - t0
                else:
                    self.done.wait(self.interval)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.seconds


def train_interest_step(url: str) -> dict[str, Any]:
    watch = IndexBuildWatch(url)
    watch.start()
    try:
        proc = subprocess.run([sys.executable, __file__, "--interest-child", url], check=True,
                              capture_output=True, text=True)
    finally:
        hnsw = watch.stop()
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**row, "hnsw_build_s": round(hnsw, 1)}


def precomputed_step(url: str, sample: list[str]) -> dict[str, float]:
    """`recommend` latencies of `sample` (user ids) after their candidates were precomputed
    (`refill`, the worker's and `recsys-db precompute`'s code), and that refill's rate."""
    from recsys_db.interest.precompute import refill

    with psycopg.connect(url) as conn:
        keys = [r[0] for r in conn.execute("SELECT user_key FROM recsys.users "
                                           "WHERE user_id = ANY(%s)", (sample,))]
        filled = refill(conn, users=keys)
    latency = common.percentiles(common.recommend_latencies(url, sample))
    return {"recommend_precomputed_p50_ms": latency["p50_ms"],
            "recommend_precomputed_p99_ms": latency["p99_ms"],
            "precompute_users_per_s": round(filled.users / filled.seconds, 1)}


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}
    return {key: bool(ops[op](figures[key], bound)) for key, (op, bound) in TARGETS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--interest-child", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.interest_child:
        interest_child(args.interest_child)
        return

    # the jobs' progress lines (train-ranker logs each label window) between the figures
    logging.basicConfig(format="    %(message)s")
    logging.getLogger("recsys_db").setLevel(logging.INFO)
    figures: dict[str, Any] = {"events": args.events, "items": args.items, "users": args.users}

    def step(key: str, value: Any) -> None:
        figures[key] = value
        print(f"  {key:28s} {value}", flush=True)

    with tempfile.TemporaryDirectory() as tmp, scratch_database("recsys_bench_scale") as url:
        path = Path(tmp) / "events.csv"
        with common.Timer() as t:
            synth.generate(path, args.users, args.items, args.events, seed=3)
        step("generate_s", round(t.seconds, 1))
        step("ingest_events_per_s", round(args.events / common.timed_load(path, url, args.events)))
        path.unlink()
        for key, value in train_interest_step(url).items():
            step(key, value)
        with psycopg.connect(url) as conn:
            with common.Timer() as t:
                train_cf(conn)
            step("cf_s", round(t.seconds, 1))
            with common.Timer() as t:
                ranker = train_ranker(conn)
            step("ranker_s", round(t.seconds, 1))
            step("ranker_train_lists", ranker["train_lists"])
            step("ranker_valid_ndcg10", round(ranker["valid_ndcg10"], 4))
            for part in ("interest_train_s", "helpers_s", "lists_s", "fit_s"):
                step(f"ranker_{part.replace('_train', '')}", ranker[part])
        sample = [str(u) for u in np.random.default_rng(0).integers(1, args.users + 1,
                                                                      args.queries)]
        latency = common.percentiles(common.recommend_latencies(url, sample))
        step("recommend_p50_ms", latency["p50_ms"])
        step("recommend_p99_ms", latency["p99_ms"])
        for clients in (2, 8):
            step(f"qps_{clients}", round(common.pgbench(url, args.users, clients,
                                                 args.pgbench_seconds), 1))
        for key, value in precomputed_step(url, sample).items():
            step(key, value)
        with psycopg.connect(url) as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        step("db_size_mb", round(size / 2**20))
    figures["met"] = verdicts(figures)
    figures["machine"] = common.machine()
    print("targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}"
                                  for k, ok in figures["met"].items()))
    common.emit(figures, args.json, "scale")


if __name__ == "__main__":
    main()
