"""Freshness: lag from an event's commit (recsys.track_event) to the user's updated state.

    python bench/freshness.py [--rate 200] [--seconds 15] [--json]

A scratch database gets a synthetic log and a trained interest model; `recsys-db worker` runs
in its own process; this script calls track_event at a steady rate from one connection while a
second connection watches recsys.user_states. Target: p95 <= 1 s at 200 events/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, live_worker, machine, percentiles  # noqa: E402

from recsys_db import synth  # noqa: E402
from recsys_db.db import scratch_database  # noqa: E402
from recsys_db.ingest import load_events  # noqa: E402
from recsys_db.interest.train import TrainConfig  # noqa: E402
from recsys_db.interest.trainer import train_interest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, scratch_database("recsys_bench_fresh") as url:
        path = Path(tmp) / "events.csv"
        synth.generate(path, args.users, args.items, args.events, seed=3)
        load_events(path, url=url)
        with psycopg.connect(url) as conn:
            version = train_interest(conn, TrainConfig(epochs=1))["version_id"]
        with live_worker(url):
            lags = drive(url, version, args)
    figures = {"rate_events_per_s": args.rate, "events": len(lags),
               "lag_p50_ms": percentiles(lags)["p50_ms"],
               "lag_p95_ms": percentiles(lags)["p95_ms"],
               "lag_max_ms": round(max(lags), 1), "machine": machine()}
    emit(figures, args.json, "freshness")


def drive(url: str, version: int, args: argparse.Namespace) -> list[float]:
    """Track events at the rate; return each event's lag (ms) until its user's state has it."""
    rng = np.random.default_rng(0)
    pending: dict[int, tuple[int, float]] = {}  # event_id -> (user_key, commit time)
    lags: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not (done.is_set() and not pending):
                rows = conn.execute("SELECT user_key, last_event_id FROM recsys.user_states "
                                    "WHERE version_id = %s AND updated_at > now() - "
                                    "interval '5 seconds'", (version,)).fetchall()
                now = time.perf_counter()
                covered = dict(rows)
                with lock:
                    for event_id, (user, sent) in list(pending.items()):
                        if covered.get(user, 0) >= event_id:
                            lags.append((now - sent) * 1000)
                            del pending[event_id]
                if done.is_set() and time.perf_counter() - stop_at > 10:
                    break  # give up on what never arrived (reported as missing)
                time.sleep(0.005)

    stop_at = float("inf")
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    n = int(args.rate * args.seconds)
    with psycopg.connect(url, autocommit=True) as conn:
        user_keys = dict(conn.execute("SELECT user_id, user_key FROM recsys.users").fetchall())
        users = list(user_keys)
        start = time.perf_counter()
        for i in range(n):
            target = start + i / args.rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            user = users[int(rng.integers(len(users)))]
            event_id = conn.execute(
                "SELECT recsys.track_event(%s, %s, 'pv', now(), '1')",
                (user, str(int(rng.integers(1, args.items))))).fetchone()[0]
            with lock:
                pending[event_id] = (user_keys[user], time.perf_counter())
    stop_at = time.perf_counter()
    done.set()
    watcher.join()
    if pending:
        print(f"  {len(pending)} events never reached a state within 10 s")
    return lags


if __name__ == "__main__":
    main()
