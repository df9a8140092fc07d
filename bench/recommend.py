"""Serving: latency and throughput of `recsys.recommend(user, 10)` after training everything.

    python bench/recommend.py [--users 10000 --items 100000 --events 1000000] [--json]
    python bench/recommend.py --users 1000 --items 10000 --events 100000   # about a minute

Generates a synthetic log, loads it into a scratch database, trains the interest model, CF and
the ranker, then measures: p50/p99 of recommend() over 1,000 random users from one connection,
first on the live path (no precomputed candidates yet: `live_p50_ms`, `live_p99_ms`), then after
`recsys-db precompute` filled every user's row, as the worker keeps them (`p50_ms`, `p99_ms`);
queries/s with pgbench (shipped with the embedded server) at 2 and 8 clients; and a bare
pgvector top-10 query on the same server as the floor. Targets: p50 <= 10 ms, p99 <= 30 ms,
>= 150 queries/s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Timer,
    emit,
    machine,
    percentiles,
    pgbench,
    recommend_latencies,
    timed_load,
)

from recsys_db import synth  # noqa: E402
from recsys_db.cf import train_cf  # noqa: E402
from recsys_db.db import scratch_database  # noqa: E402
from recsys_db.interest.precompute import refill  # noqa: E402
from recsys_db.interest.train import TrainConfig  # noqa: E402
from recsys_db.interest.trainer import train_interest  # noqa: E402
from recsys_db.ranker.train import train_ranker  # noqa: E402
from recsys_db.registry import active_version  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=3, help="interest model epochs")
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, scratch_database("recsys_bench_rec") as url:
        path = Path(tmp) / "events.csv"
        synth.generate(path, args.users, args.items, args.events, seed=2)
        timings = {}
        with psycopg.connect(url) as conn:
            timings["load_s"] = round(timed_load(path, url, args.events), 1)
            with Timer() as t:
                train_interest(conn, TrainConfig(epochs=args.epochs))
            timings["train_interest_s"] = round(t.seconds, 1)
            with Timer() as t:
                train_cf(conn)
            timings["train_cf_s"] = round(t.seconds, 1)
            with Timer() as t:
                ranker = train_ranker(conn)
            timings["train_ranker_s"] = round(t.seconds, 1)
            interest = active_version(conn, "interest")
            dim = conn.execute("SELECT dim FROM recsys.model_versions WHERE version_id = %s",
                               (interest,)).fetchone()[0]
        rng = np.random.default_rng(0)
        sample = [str(u) for u in rng.integers(1, args.users + 1, args.queries)]
        live = percentiles(recommend_latencies(url, sample))
        with psycopg.connect(url) as conn, Timer() as t:
            filled = refill(conn)
        timings["precompute_s"] = round(t.seconds, 1)
        latencies = recommend_latencies(url, sample)
        with psycopg.connect(url, autocommit=True) as conn:
            knn = []
            floor_sql = (f"SELECT item_key FROM recsys.item_embeddings_v{interest} ORDER BY "
                         f"embedding::vector({dim}) <#> (SELECT s.state::vector({dim}) FROM "
                         "recsys.user_states s JOIN recsys.users u USING (user_key) WHERE "
                         "u.user_id = %s AND s.version_id = %s) LIMIT 10")
            for user in sample:
                t0 = time.perf_counter()
                conn.execute(floor_sql, (user, interest)).fetchall()
                knn.append((time.perf_counter() - t0) * 1000)
        qps = {n: pgbench(url, args.users, n, args.pgbench_seconds) for n in (2, 8)}
    lat, floor = percentiles(latencies), percentiles(knn)
    figures = {"p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"], "live_p50_ms": live["p50_ms"],
               "live_p99_ms": live["p99_ms"], "precomputed_users": filled.users,
               "qps_2": round(qps[2], 1),
               "qps_8": round(qps[8], 1), "knn_floor_p50_ms": floor["p50_ms"],
               "knn_floor_p99_ms": floor["p99_ms"], "ranker_trees": ranker["tradeoffs"][-1],
               "ranker_interest_train_s": ranker["interest_train_s"],
               "users": args.users, "items": args.items, "events": args.events, **timings,
               "machine": machine()}
    emit(figures, args.json, "recommend")


if __name__ == "__main__":
    main()
