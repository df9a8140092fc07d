"""Precomputed candidates: keep `recsys.user_candidates` current, so `recommend` can skip the
live candidate query (sql/functions/precompute_candidates.sql says what a row holds and when
rank_candidates serves it).

The worker calls `precompute_users` with the users whose states it advanced, after their states
committed, in a thread on its own connection (a row names the state it was computed from, so
until it is rewritten the live query serves that user). After an activation every row is stale:
`refill` recomputes them, most recently active users first, one short transaction per batch,
within a time budget (`recsys-db precompute`, and the worker between events). Users it does not
reach are served by the live query until their next event or the next refill.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from recsys_db.sqlfiles import queries

MAX_BATCH = 10_000  # precompute_candidates takes at most this many users per call


@dataclass
class RefillStats:
    users: int = 0       # users written
    remaining: int = 0   # users still stale when the time budget ran out (0: all done)
    seconds: float = 0.0


def _sql() -> dict[str, str]:
    return queries("precompute.sql")


def precompute_users(conn: psycopg.Connection, user_keys: Sequence[int]) -> int:
    """Recompute the rows of `user_keys` in the caller's transaction; returns users written."""
    written = 0
    keys = [int(k) for k in user_keys]
    for start in range(0, len(keys), MAX_BATCH):
        row = conn.execute(_sql()["precompute"], {"users": keys[start:start + MAX_BATCH]}
                           ).fetchone()
        written += int(row[0]) if row and row[0] is not None else 0
    return written


def serving_key(conn: psycopg.Connection) -> tuple[int | None, ...]:
    """(interest, cf, ranker version, highest item key): what rows are computed for."""
    return tuple(conn.execute(_sql()["serving_key"]).fetchone())


def users_to_refill(conn: psycopg.Connection, limit: int = 1_000_000) -> list[int]:
    """Users whose row is missing or was computed for other versions or another catalog, most
    recently active first."""
    interest, cf, ranker, max_item = serving_key(conn)
    rows = conn.execute(_sql()["users_to_refill"],
                        {"interest": interest, "cf": cf, "ranker": ranker,
                         "max_item": max_item, "limit": limit}).fetchall()
    return [int(r[0]) for r in rows]


def refill(conn: psycopg.Connection, seconds: float | None = None, batch: int = 200,
           users: Sequence[int] | None = None) -> RefillStats:
    """Recompute stale rows (or those of `users`), committing after each batch of `batch` users,
    until done or `seconds` have passed."""
    if batch < 1 or batch > MAX_BATCH:
        raise ValueError(f"batch must be between 1 and {MAX_BATCH}, got {batch}")
    t0 = time.perf_counter()
    todo = list(users) if users is not None else users_to_refill(conn)
    conn.commit()
    stats = RefillStats()
    done = 0
    while done < len(todo):
        if seconds is not None and time.perf_counter() - t0 >= seconds:
            break
        stats.users += precompute_users(conn, todo[done:done + batch])
        conn.commit()
        done += batch
    stats.remaining = max(0, len(todo) - done)
    stats.seconds = time.perf_counter() - t0
    return stats


def delete_stale(conn: psycopg.Connection) -> int:
    """Delete rows computed for versions that are no longer active; returns rows deleted."""
    return conn.execute(_sql()["delete_stale"]).rowcount
