"""Item-item collaborative filtering from co-occurrence in user sequences.

For every pair of events of the same user at most `window` positions apart (items a, b):

    w(a, b) = sqrt(weight(behavior_a) * weight(behavior_b))   behaviour strength (buy > cart ...)
              * 1 / gap                                       closer in the sequence counts more
              * 0.5 ** (age / half_life)                      recent pairs count more (age of the
                                                              later event, before `as_of`)

summed symmetrically into C[a, b]; self-pairs are left out. Normalised like a cosine,
sim(a, b) = C[a, b] / sqrt(P[a] * P[b]) with P[a] the decayed, weighted occurrences of a, so
popular items don't dominate. Each item keeps its `top_n` most similar neighbours.

`train_cf` writes them as a new 'cf' version through the registry's lifecycle (create, write,
mark ready, promote); SQL: sql/cf.sql.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import scipy.sparse as sp

from recsys_db.params import Params
from recsys_db.registry import (
    DEFAULT_TOLERANCE,
    create_version,
    mark_ready,
    promote,
    set_metrics,
)
from recsys_db.sequences import EventLog, load_event_log
from recsys_db.sqlfiles import queries

DAY = 86_400.0


@dataclass(frozen=True)
class CFConfig(Params):
    window: int = 5
    half_life_days: float = 7.0
    top_n: int = 50

    def __post_init__(self) -> None:
        for name in ("window", "top_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.half_life_days, bool) or not isinstance(
                self.half_life_days, int | float) or not self.half_life_days > 0:
            raise ValueError(f"half_life_days must be a number > 0, got {self.half_life_days!r}")


@dataclass
class Neighbors:
    """Top neighbours as aligned arrays (item keys, not indices), best first per item."""

    item: np.ndarray
    neighbor: np.ndarray
    score: np.ndarray


def similarity(log: EventLog, behavior_weight: np.ndarray, config: CFConfig,
               as_of: float | None = None, rows_of: np.ndarray | None = None
               ) -> tuple[sp.csr_matrix, np.ndarray]:
    """(similarity matrix over item indices, item keys of those indices).

    `rows_of` (item keys): only those items' rows are filled, each exactly as in the whole
    matrix (same pairs, summed in the same order); the others are empty. A ranker's helper
    version needs a few thousand items' neighbours, and building every row cost most of its
    CF time."""
    keys, idx = np.unique(log.item, return_inverse=True)
    n = len(keys)
    as_of = float(log.ts.max()) if as_of is None and len(log) else (as_of or 0.0)
    strength = behavior_weight[np.clip(log.behavior, 0, len(behavior_weight) - 1)]
    decay = 0.5 ** (np.maximum(as_of - log.ts, 0) / (config.half_life_days * DAY))
    occurrence = np.bincount(idx, weights=strength * decay, minlength=n)
    wanted = None if rows_of is None else np.isin(keys, rows_of)
    rows, cols, vals = [], [], []
    for gap in range(1, config.window + 1):
        a = np.arange(len(log) - gap)
        b = a + gap
        same = (log.user[a] == log.user[b]) & (idx[a] != idx[b])
        a, b = a[same], b[same]
        w = np.sqrt(strength[a] * strength[b]) / gap * decay[b]
        for row, col in ((idx[a], idx[b]), (idx[b], idx[a])):
            keep = slice(None) if wanted is None else wanted[row]
            rows.append(row[keep])
            cols.append(col[keep])
            vals.append(w[keep])
    if not rows:
        return sp.csr_matrix((n, n)), keys
    co = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(n, n))
    co.sum_duplicates()
    norm = 1.0 / np.sqrt(np.maximum(occurrence, 1e-12))
    return sp.csr_matrix(sp.diags(norm) @ co @ sp.diags(norm)), keys


def top_neighbors(sim: sp.csr_matrix, keys: np.ndarray, top_n: int) -> Neighbors:
    """The `top_n` highest-similarity neighbours of every item (vectorised over the CSR)."""
    sim = sim.tocsr()
    row = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
    order = np.lexsort((-sim.data, row))
    row, col, val = row[order], sim.indices[order], sim.data[order]
    rank = np.arange(len(row)) - np.repeat(sim.indptr[:-1], np.diff(sim.indptr))
    keep = rank < top_n
    return Neighbors(keys[row[keep]], keys[col[keep]], val[keep].astype(np.float32))


def behavior_weights(conn: psycopg.Connection) -> np.ndarray:
    """recsys.behavior_types weights as an array indexed by behavior_key (0 where undefined)."""
    rows = conn.execute(queries("cf.sql")["behavior_weights"]).fetchall()
    weights = np.zeros(max([k for k, _ in rows], default=0) + 1)
    for key, weight in rows:
        weights[key] = weight
    return weights


def train_cf(conn: psycopg.Connection, config: CFConfig | None = None, *,
             as_of: datetime | None = None, activate: bool = True,
             tolerance: float = DEFAULT_TOLERANCE, job_run_id: int | None = None,
             status: str = "ready", items: np.ndarray | None = None) -> dict[str, Any]:
    """Neighbours and item statistics from events before `as_of` (default: all), written as a
    new 'cf' model version in one transaction, then promoted (CF has no validation metric, so
    `tolerance` matters only to kinds that do). status 'building': a helper version, neither
    marked ready nor promoted. `items` (item keys; helpers only): write the neighbours of
    these items alone - a ranker's lists read only those of their users' own items."""
    if items is not None and status != "building":
        raise ValueError("only a 'building' helper version may keep some items' neighbours")
    if status not in ("ready", "building"):
        raise ValueError(f"status must be 'ready' or 'building', got {status!r}")
    config = config or CFConfig()
    sql = queries("cf.sql")
    t0 = time.perf_counter()
    log = load_event_log(conn, before=as_of.timestamp() if as_of else None)
    if len(log) == 0:
        raise ValueError("no events: load some with `recsys-db ingest` first")
    if as_of is None:
        as_of = datetime.fromtimestamp(int(log.ts.max()) + 1, UTC)
    sim, keys = similarity(log, behavior_weights(conn), config, as_of.timestamp(), items)
    nb = top_neighbors(sim, keys, config.top_n)  # only `items`' rows are filled when given
    params = {**config.to_params(), "as_of": as_of.isoformat()}
    with conn.transaction():
        version = create_version(conn, "cf", params, job_run_id=job_run_id)
        with conn.cursor().copy(sql["copy_neighbors"]) as copy:
            copy.write("".join(f"{version}\t{a}\t{b}\t{s:.7g}\n"
                               for a, b, s in zip(nb.item, nb.neighbor, nb.score, strict=True)))
        stats_rows = conn.execute(sql["refresh_item_stats"],
                                  {"version": version, "as_of": as_of}).fetchone()[0]
        conn.execute(sql["analyze"])
        metrics = {"events": len(log), "items": len(keys), "neighbors": len(nb.item),
                   "item_stats": stats_rows, "rows_read": len(log)}
        if status == "ready":
            mark_ready(conn, version, metrics)
        else:
            set_metrics(conn, version, metrics)
    promotion = promote(conn, version, tolerance) if activate and status == "ready" else None
    conn.commit()
    return {**metrics, "version_id": version, "as_of": as_of.isoformat(),
            "activated": bool(promotion and promotion.activated),
            "activation": promotion.reason if promotion else "not requested",
            "seconds": round(time.perf_counter() - t0, 1)}
