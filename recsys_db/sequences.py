"""Behavior sequences: the event log as compact numpy arrays, grouped by user in time order.

Read from PostgreSQL with `COPY ... TO STDOUT` in chunks (never one Python object per event):
10M events take about 300 MB. Users are contiguous runs: `offsets[u]:offsets[u+1]` indexes the
events of the u-th user (sorted by user_key, then ts, then event_id).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg

_COLUMNS = ["user_key", "item_key", "category_key", "behavior_key", "ts", "event_id"]
_DTYPES = {"user_key": np.int32, "item_key": np.int32, "category_key": np.int32,
           "behavior_key": np.int8, "ts": np.int64, "event_id": np.int64}
CHUNK_BYTES = 32 << 20
# the default recsys.behavior_types keys and weights (sql/schema.sql)
BEHAVIOR_KEYS = {"pv": 1, "fav": 2, "cart": 3, "buy": 4}
BEHAVIOR_WEIGHTS = {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}  # behavior_key -> weight


@dataclass
class EventLog:
    """Events sorted by (user, ts, event_id); `offsets` has one more entry than there are users."""

    user: np.ndarray  # int32 user_key, per event
    item: np.ndarray  # int32 item_key
    category: np.ndarray  # int32 category_key (0 = unknown)
    behavior: np.ndarray  # int8 behavior_key (1 pv, 2 fav, 3 cart, 4 buy by default)
    ts: np.ndarray  # int64 unix seconds
    event_id: np.ndarray  # int64
    offsets: np.ndarray  # int64, len = n_users + 1
    users: np.ndarray  # int32 user_key of each run

    def __len__(self) -> int:
        return int(self.item.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.users.shape[0])

    def user_slice(self, u: int) -> slice:
        return slice(int(self.offsets[u]), int(self.offsets[u + 1]))

    def take(self, mask: np.ndarray) -> EventLog:
        """The events where `mask` is true (order kept), regrouped by user."""
        return from_arrays(self.user[mask], self.item[mask], self.category[mask],
                           self.behavior[mask], self.ts[mask], self.event_id[mask])


def from_arrays(user: np.ndarray, item: np.ndarray, category: np.ndarray, behavior: np.ndarray,
                ts: np.ndarray, event_id: np.ndarray | None = None, *, sort: bool = False
                ) -> EventLog:
    """Build an EventLog; with sort=True the arrays are first sorted by (user, ts, event_id)."""
    if event_id is None:
        event_id = np.arange(1, len(item) + 1, dtype=np.int64)
    if sort:
        order = np.lexsort((event_id, ts, user))
        user, item, category, behavior, ts, event_id = (
            a[order] for a in (user, item, category, behavior, ts, event_id))
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if len(user) else np.array([], int)
    offsets = np.r_[starts, len(user)].astype(np.int64)
    return EventLog(user.astype(np.int32), item.astype(np.int32), category.astype(np.int32),
                    behavior.astype(np.int8), ts.astype(np.int64), event_id.astype(np.int64),
                    offsets, user[starts].astype(np.int32))


def load_event_log(conn: psycopg.Connection, *, before: float | None = None,
                   users: list[int] | None = None) -> EventLog:
    """Stream events (optionally only those with ts < `before` unix seconds, or of `users`)."""
    where = []
    params: list[object] = []
    if before is not None:
        where.append("ts < to_timestamp(%s)")
        params.append(before)
    if users is not None:
        where.append("user_key = ANY(%s)")
        params.append(users)
    cond = f"WHERE {' AND '.join(where)}" if where else ""
    query = (
        "COPY (SELECT user_key, item_key, coalesce(category_key, 0), behavior_key,"
        " extract(epoch FROM ts)::bigint, event_id FROM recsys.events "
        f"{cond} ORDER BY user_key, ts, event_id) TO STDOUT"
    )
    frames = []
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(query, params or None) as copy:
        for block in copy:
            buffer.write(block)
            if buffer.tell() >= CHUNK_BYTES:
                frames.append(_parse(buffer))
                buffer = io.BytesIO()
    if buffer.tell():
        frames.append(_parse(buffer))
    if not frames:
        empty = {c: np.array([], dtype=t) for c, t in _DTYPES.items()}
        return from_arrays(*(empty[c] for c in _COLUMNS))
    cols = {c: np.concatenate([f[c] for f in frames]) for c in _COLUMNS}
    return from_arrays(*(cols[c] for c in _COLUMNS))


def _parse(buffer: io.BytesIO) -> dict[str, np.ndarray]:
    buffer.seek(0)
    frame = pd.read_csv(buffer, sep="\t", header=None, names=_COLUMNS, dtype=_DTYPES)
    return {c: frame[c].to_numpy() for c in _COLUMNS}
