"""Ingestion throughput: bulk load of synthetic events, and single `recsys.track_event` calls.

    python bench/ingest.py [--events 1000000] [--tracks 5000] [--json]

Runs against a scratch database on the configured server (embedded by default), dropped at the
end. Targets: >= 200,000 events/s bulk, >= 2,000 track_event calls/s from one connection.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, emit, machine, timed_load  # noqa: E402

from recsys_db import synth  # noqa: E402
from recsys_db.db import scratch_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--tracks", type=int, default=5_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, scratch_database("recsys_bench_ingest") as url:
        path = Path(tmp) / "events.csv"
        synth.generate(path, args.users, args.items, args.events, seed=1)
        bulk_seconds = timed_load(path, url, args.events)
        rng = np.random.default_rng(0)
        users = rng.integers(1, args.users * 2, args.tracks)  # half are new users
        items = rng.integers(1, args.items, args.tracks)
        start = datetime(2017, 12, 4, tzinfo=UTC)
        behaviors = rng.choice(["pv", "cart", "fav", "buy"], args.tracks, p=[.9, .05, .03, .02])
        with psycopg.connect(url, autocommit=True) as conn, Timer() as tracks:
            for n in range(args.tracks):
                conn.execute("SELECT recsys.track_event(%s, %s, %s, %s)",
                             (str(users[n]), str(items[n]), str(behaviors[n]),
                              start + timedelta(seconds=n)))
    figures = {
        "events": args.events,
        "bulk_seconds": round(bulk_seconds, 2),
        "bulk_events_per_s": round(args.events / bulk_seconds),
        "tracks": args.tracks,
        "track_events_per_s": round(args.tracks / tracks.seconds),
        "machine": machine(),
    }
    emit(figures, args.json, "ingest")


if __name__ == "__main__":
    main()
