"""Live updates: advance stored user states through events newer than each state.

No retraining: the active version's encoder continues each user's stored recurrent state (or
context window) through the new events only. Users without a state get one from their events.
A user whose stored state missed an event that arrived late (its timestamp is before the
state's last event) is recomputed from their full history, so states always equal a full run.
The users whose states advance get their precomputed candidates (recsys_db/interest/
precompute.py) right after their states commit, in transactions of their own: a row names the
state it used, so until it is rewritten the live query serves them, and a state's freshness
never waits for candidates. The worker does this on a second connection, in a thread beside
the state refresh, and refills there the rows an activation left stale.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import psycopg

from recsys_db.interest import LOOKBACK_IDS, precompute, store, watermark_key
from recsys_db.interest.features import (
    Steps,
    bucket_gaps,
    log_steps,
    make_steps,
    sequence_starts,
)
from recsys_db.interest.states import advance, encode_histories
from recsys_db.registry import active_version
from recsys_db.sequences import EventLog, load_event_log
from recsys_db.sqlfiles import queries

_log = logging.getLogger(__name__)


@dataclass
class RefreshStats:
    version_id: int | None
    users: int = 0
    advanced: int = 0
    recomputed: int = 0
    events: int = 0
    seconds: float = 0.0
    precomputed: int = 0  # users whose candidates were precomputed after their new state
    user_keys: list[int] = field(default_factory=list)  # users whose states were written


def refresh_states(conn: psycopg.Connection, loaded: store.LoadedModel | None = None,
                   lookback: int = LOOKBACK_IDS, precompute_after: bool = True) -> RefreshStats:
    """Bring the active version's user states up to date with the events table; then (unless
    `precompute_after` is false: the worker does it in bounded steps) precompute the candidates
    of the users whose states were written, once their states have committed."""
    t0 = time.perf_counter()
    if loaded is None:
        if active_version(conn, store.KIND) is None:
            return RefreshStats(None)
        loaded = store.load_model(conn)
    version = loaded.version_id
    sql = queries("live.sql")
    key = watermark_key(version)
    row = conn.execute(sql["watermark"], {"key": key}).fetchone()
    mark = row[0] if row else conn.execute(sql["initial_watermark"],
                                           {"version": version}).fetchone()[0]
    stale = conn.execute(sql["stale_users"], {"since": mark - lookback, "version": version}
                         ).fetchall()
    stats = RefreshStats(version)
    if stale:
        log = load_event_log(conn, users=[r[0] for r in stale])
        stats = _update_users(conn, loaded, log)
        mark = max(mark, int(stale[0][1]))
    conn.execute(sql["save_watermark"], {"key": key, "mark": mark})
    conn.commit()
    if precompute_after and stats.user_keys and version == active_version(conn, store.KIND):
        stats.precomputed = precompute.refill(conn, users=stats.user_keys).users
    conn.commit()
    stats.seconds = time.perf_counter() - t0
    return stats


def _update_users(conn: psycopg.Connection, loaded: store.LoadedModel, log: EventLog
                  ) -> RefreshStats:
    model, items, categories = loaded.model, loaded.items, loaded.categories
    version = loaded.version_id
    known = {r[0]: r[1:] for r in conn.execute(
        "SELECT user_key, hidden, extract(epoch FROM last_event_ts)::bigint, last_event_id, "
        "n_events FROM recsys.user_states WHERE version_id = %s AND user_key = ANY(%s)",
        (version, log.users.tolist()))}
    cont_rows, cont_hidden, cont_new = [], [], []
    fresh_rows = []
    for r, user in enumerate(log.users.tolist()):
        sl = log.user_slice(r)
        n_total = sl.stop - sl.start
        prev = known.get(user)
        if prev is None:
            fresh_rows.append(r)
            continue
        hidden, last_ts, last_id, n_done = prev
        if n_total == n_done:
            continue
        ts, ids = log.ts[sl], log.event_id[sl]
        newer = (ts > last_ts) | ((ts == last_ts) & (ids > last_id))
        if n_done + int(newer.sum()) != n_total or not newer[-int(newer.sum()):].all():
            fresh_rows.append(r)  # a late event landed inside the history: recompute
            continue
        cont_rows.append(r)
        cont_hidden.append(np.asarray(hidden, dtype=np.float32))
        cont_new.append(np.arange(sl.start, sl.stop)[newer])
    stats = RefreshStats(version, users=len(cont_rows) + len(fresh_rows),
                         advanced=len(cont_rows), recomputed=len(fresh_rows))
    parts = []
    if cont_rows:
        idx = np.concatenate(cont_new)
        offsets = np.r_[0, np.cumsum([len(x) for x in cont_new])].astype(np.int64)
        prev_ts = np.array([known[log.users[r]][1] for r in cont_rows], dtype=np.int64)
        steps = _continuation_steps(loaded, log, idx, offsets, prev_ts)
        enc = advance(model, np.stack(cont_hidden), steps, offsets)
        stats.events += len(idx)
        rows = np.asarray(cont_rows)
        parts.append((rows, enc))
    if fresh_rows:
        fresh = log.take(np.isin(log.user, log.users[fresh_rows]))
        enc = encode_histories(model, log_steps(fresh, items, categories), fresh.offsets)
        stats.events += len(fresh)
        rows = np.searchsorted(log.users, fresh.users)
        parts.append((rows, enc))
    for rows, enc in parts:
        last = log.offsets[rows + 1] - 1
        states = store.state_rows(model, items, categories, log.users[rows], enc,
                                  log.event_id[last], log.ts[last], np.diff(log.offsets)[rows])
        store.write_states(conn, version, states)
    stats.user_keys = [int(u) for rows, _ in parts for u in log.users[rows]]
    return stats


def _continuation_steps(loaded: store.LoadedModel, log: EventLog, idx: np.ndarray,
                        offsets: np.ndarray, prev_ts: np.ndarray) -> Steps:
    """Steps of the new events; each user's first new gap is measured from the stored state."""
    ts = log.ts[idx].copy()
    first = sequence_starts(offsets, len(idx))
    steps = make_steps(loaded.items, loaded.categories, log.item[idx], log.category[idx],
                       log.behavior[idx], ts, first)
    steps.gap[offsets[:-1]] = bucket_gaps(ts[offsets[:-1]] - prev_ts)
    return steps


PRECOMPUTE_BATCH = 10  # users per precompute transaction
PRECOMPUTE_REST = 1.0  # after a batch, rest this many times as long as it took (<= half a core)
REFILL_IDLE_S = 1.0    # refill after an activation only once no state was written for this long


class _Precomputer(threading.Thread):
    """Precomputes candidates on a connection of its own, beside the state refresh: the users
    whose states just advanced first (newest first), then, once the worker has been idle for
    REFILL_IDLE_S, those an activation left stale. It rests between batches (PRECOMPUTE_REST),
    so the state refresh keeps most of the machine; a user not reached yet is served by the
    live query."""

    def __init__(self, url: str | None) -> None:
        super().__init__(name="recsys-precompute", daemon=True)
        self.url = url
        self.lock = threading.Lock()
        self.queue: dict[int, None] = {}  # insertion order: most urgent first
        self.stale: list[int] = []
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.busy_at = 0.0  # when the worker last wrote states

    def add(self, users: list[int]) -> None:
        if users:
            with self.lock:
                self.queue = dict.fromkeys([*reversed(users), *self.queue])
                self.busy_at = time.monotonic()
            self.wake.set()

    def _next(self) -> list[int]:
        with self.lock:
            batch = list(self.queue)[:PRECOMPUTE_BATCH]
            for user in batch:
                del self.queue[user]
            if not batch and time.monotonic() - self.busy_at >= REFILL_IDLE_S:
                batch, self.stale = self.stale[:PRECOMPUTE_BATCH], self.stale[PRECOMPUTE_BATCH:]
        return batch

    def run(self) -> None:
        from recsys_db.db import connect

        versions: tuple[int | None, ...] | None = None
        with connect(self.url) as conn:
            while not self.stop.is_set():
                try:
                    # a new version: every row is stale; a new item alone leaves them to the
                    # users' next events (the live query serves meanwhile)
                    now_versions = precompute.serving_key(conn)[:3]
                    if now_versions != versions:
                        stale = precompute.users_to_refill(conn)
                        versions = now_versions
                        with self.lock:
                            self.stale = stale
                    conn.commit()
                    batch = self._next()
                    if batch:
                        took = precompute.refill(conn, users=batch, batch=PRECOMPUTE_BATCH).seconds
                        self.stop.wait(took * PRECOMPUTE_REST)
                    else:
                        self.wake.wait(timeout=REFILL_IDLE_S / 2)
                        self.wake.clear()
                except psycopg.Error:
                    _log.exception("precomputing candidates failed; retrying in 1 s")
                    conn.rollback()
                    self.stop.wait(1.0)


def run_worker(url: str | None = None, poll_seconds: float = 1.0,
               stop_after: float | None = None) -> None:
    """LISTEN for new events and refresh states; also polls every `poll_seconds`. Candidates
    are precomputed beside it (_Precomputer), for the users it advanced and after activations."""
    from recsys_db.db import connect

    started = time.monotonic()
    precomputer = _Precomputer(url)
    precomputer.start()
    try:
        with connect(url, autocommit=True) as listener, connect(url) as conn:
            listener.execute("LISTEN recsys_events")
            loaded: store.LoadedModel | None = None
            while stop_after is None or time.monotonic() - started < stop_after:
                active = active_version(conn, store.KIND)
                conn.commit()
                if active is not None and (loaded is None or loaded.version_id != active):
                    loaded = store.load_model(conn, active)
                    conn.commit()
                if loaded is not None:
                    stats = refresh_states(conn, loaded, precompute_after=False)
                    if stats.users:
                        _log.info("refreshed %d users (%d events) in %.3f s", stats.users,
                                  stats.events, stats.seconds)
                    precomputer.add(stats.user_keys)
                for _ in listener.notifies(timeout=poll_seconds, stop_after=1):
                    pass
    finally:
        precomputer.stop.set()
        precomputer.wake.set()
        precomputer.join(timeout=30)
