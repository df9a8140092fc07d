"""Replica lag: from `track_event` on the primary to a changed `recommend` on the standby.

    python bench/replica.py [--shifts 40] [--users 1000 --items 10000 --events 60000] [--json]

Uses the embedded server (RECSYS_HOME) and its standby (`recsys-db replica`, started here when
it is not running, and stopped afterwards if so). A scratch database on the primary gets a
synthetic log, a small interest model and a CF version; it reaches the standby by streaming
replication. `recsys-db worker` runs against the primary. Then, for each shift: a user's
recommendations are read on the standby, three `cart` events on popular items of a category the
user never touched are tracked on the primary, and the standby is polled: first until it has
replayed the primary's WAL up to the last event's commit, then (recommend, and the user's
state) until its answer changes. Figures:

* replica_lag_p50_ms / p95: last track_event's commit -> first changed recommend on the standby
  (the poll itself takes one recommend call, so the resolution is about one call);
* replica_replay_lag_p50_ms / p95: the same commit -> the standby has replayed it (streaming
  replication alone);
* replica_state_lag_p50_ms / p95: the same commit -> the worker's new state of the user read
  on the standby (the worker's freshness plus replication);
* standby_recommend_p50_ms / p99 and primary_recommend_p50_ms: recommend(user, 10) latency on
  each server, same users, one connection.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, live_worker, machine, percentiles, recommend_latencies  # noqa: E402

from recsys_db import config, embedded, replica, synth  # noqa: E402
from recsys_db.cf import train_cf  # noqa: E402
from recsys_db.db import scratch_database  # noqa: E402
from recsys_db.ingest import load_events  # noqa: E402
from recsys_db.interest.train import TrainConfig  # noqa: E402
from recsys_db.interest.trainer import train_interest  # noqa: E402

RECOMMEND = "SELECT item_id FROM recsys.recommend(%s, 10)"
STATE = ("SELECT coalesce(max(s.last_event_id), 0) FROM recsys.user_states s"
         " JOIN recsys.users u USING (user_key) JOIN recsys.model_versions v"
         " ON v.version_id = s.version_id AND v.kind = 'interest' AND v.active"
         " WHERE u.user_id = %s")
# the 3 most popular items of each category, for the shifts
TOP_ITEMS = ("SELECT category_key, (array_agg(item_id ORDER BY n DESC, item_id))[1:3] FROM ("
             " SELECT e.category_key, i.item_id, count(*) AS n FROM recsys.events e"
             " JOIN recsys.items i USING (item_key) WHERE e.category_key IS NOT NULL"
             " GROUP BY 1, 2) x GROUP BY 1")
USER_CATEGORIES = ("SELECT u.user_id, array_agg(DISTINCT e.category_key) FROM recsys.events e"
                   " JOIN recsys.users u USING (user_key) GROUP BY u.user_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shifts", type=int, default=40, help="interest shifts to time")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per shift")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if config.database_url_from_env():
        sys.exit(f"unset {config.DATABASE_URL_ENV}: this benchmark runs the embedded server and "
                 "its standby (recsys-db replica)")

    embedded.start()
    started_here = not replica.status().running
    if started_here:
        print("starting the standby (recsys-db replica start) ...", file=sys.stderr)
        replica.start()
    try:
        figures = run(args)
    finally:
        if started_here:
            replica.stop()
    emit(figures, args.json, "replica")


def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, scratch_database("recsys_bench_replica") as url:
        path = Path(tmp) / "events.csv"
        synth.generate(path, args.users, args.items, args.events, seed=3)
        t0 = time.perf_counter()
        load_events(path, url=url)
        with psycopg.connect(url) as conn:
            train_interest(conn, TrainConfig(dim=32, epochs=1), checkpoint_dir=Path(tmp))
            train_cf(conn)
        setup_s = time.perf_counter() - t0
        standby_url = replica.standby_url(make_url(url).database)
        with psycopg.connect(url, autocommit=True) as primary, \
                psycopg.connect(standby_url, autocommit=True) as standby:
            replica.wait_for_replay(standby, replica.current_lsn(primary), timeout=120)
            users = [r[0] for r in primary.execute(
                "SELECT user_id FROM recsys.users ORDER BY user_id").fetchall()]
            rng = np.random.default_rng(0)
            sample = [users[i] for i in rng.choice(len(users), args.latency_calls)]
            on_standby = recommend_latencies(standby_url, sample)
            on_primary = recommend_latencies(url, sample)
            with live_worker(url):
                lags, replay_lags, state_lags, missed = shifts(primary, standby, args, rng)
    return {
        "events": args.events, "items": args.items, "users": args.users,
        "setup_s": round(setup_s, 1), "shifts": args.shifts, "shifts_unchanged": missed,
        "replica_lag_p50_ms": percentiles(lags)["p50_ms"],
        "replica_lag_p95_ms": percentiles(lags)["p95_ms"],
        "replica_lag_max_ms": round(max(lags), 1),
        "replica_replay_lag_p50_ms": percentiles(replay_lags)["p50_ms"],
        "replica_replay_lag_p95_ms": percentiles(replay_lags)["p95_ms"],
        "replica_state_lag_p50_ms": percentiles(state_lags)["p50_ms"],
        "replica_state_lag_p95_ms": percentiles(state_lags)["p95_ms"],
        "standby_recommend_p50_ms": percentiles(on_standby)["p50_ms"],
        "standby_recommend_p99_ms": percentiles(on_standby)["p99_ms"],
        "primary_recommend_p50_ms": percentiles(on_primary)["p50_ms"],
        "machine": machine(),
    }


def shifts(primary: psycopg.Connection, standby: psycopg.Connection, args: argparse.Namespace,
           rng: np.random.Generator) -> tuple[list[float], list[float], list[float], int]:
    """Time each shift (ms) on the standby: to the first changed answer, to the replay of the
    events, and to the worker's new state."""
    top = dict(primary.execute(TOP_ITEMS).fetchall())
    touched = [(u, set(c)) for u, c in primary.execute(USER_CATEGORIES).fetchall()]
    lags: list[float] = []
    replay_lags: list[float] = []
    state_lags: list[float] = []
    missed = 0
    for n in range(args.shifts):
        user, seen = touched[int(rng.integers(len(touched)))]
        fresh = [c for c in top if c not in seen]
        if not fresh:
            continue
        items = top[fresh[int(rng.integers(len(fresh)))]]
        before = standby.execute(RECOMMEND, (user,)).fetchall()
        last_id = 0
        for item in items:
            event_id = primary.execute("SELECT recsys.track_event(%s, %s, 'cart')",
                                       (user, item)).fetchone()[0]
            last_id = max(last_id, event_id or 0)
        committed = time.perf_counter()
        lsn = replica.current_lsn(primary)
        replica.wait_for_replay(standby, lsn, args.timeout)
        replay_lags.append((time.perf_counter() - committed) * 1000)
        changed_at = state_at = None
        while time.perf_counter() - committed < args.timeout and (
                changed_at is None or state_at is None):
            if changed_at is None and standby.execute(RECOMMEND, (user,)).fetchall() != before:
                changed_at = time.perf_counter()
            if state_at is None and standby.execute(STATE, (user,)).fetchone()[0] >= last_id:
                state_at = time.perf_counter()
            time.sleep(0.001)
        if changed_at is None:
            missed += 1
        else:
            lags.append((changed_at - committed) * 1000)
        if state_at is not None:
            state_lags.append((state_at - committed) * 1000)
        print(f"  shift {n + 1}/{args.shifts}: "
              + (f"changed after {lags[-1]:.1f} ms" if changed_at else "unchanged"),
              file=sys.stderr)
        time.sleep(0.2)
    return lags, replay_lags, state_lags, missed


if __name__ == "__main__":
    main()
