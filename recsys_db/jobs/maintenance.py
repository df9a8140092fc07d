"""The maintenance job: keeps storage bounded under the default schedule.

One run, in this order (each step commits on its own, so a run that dies has done whole steps):

1. model versions: `registry.gc(keep_versions)` (what `recsys-db models gc --keep N` does): the
   newest N ready versions of each kind stay, plus the active version and the one `rollback`
   returns to; the others' vectors, states, neighbours and compiled functions are dropped and
   their rows kept as 'retired'; precomputed candidates computed for versions no longer active
   are deleted (`interest.precompute.delete_stale`);
2. run history older than `job_runs_days`: retired versions' registry rows, the activation log
   entries of versions no longer listed, and finished `job_runs` rows;
3. events (only with `events_days`): whole monthly partitions of `recsys.events` whose range
   ends more than `events_days` ago are dropped (a partition still holding a newer event
   stays), and `rejected_events` rows older than that are deleted;
4. VACUUM (ANALYZE) of the tables it deleted from, so their space is reused.

Checkpoints are removed by train-interest itself after a successful run
(`interest.trainer.remove_checkpoints`). SQL: sql/maintenance.sql.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql as pgsql

from recsys_db.interest.precompute import delete_stale
from recsys_db.params import Params
from recsys_db.registry import gc
from recsys_db.sqlfiles import queries

log = logging.getLogger(__name__)


def _sql() -> dict[str, str]:
    return queries("maintenance.sql")


@dataclass(frozen=True)
class MaintenanceConfig(Params):
    """Options of the maintenance job ([jobs.maintenance] in recsys.toml)."""

    events_days: int | None = None  # drop monthly event partitions older than this; None: keep
    job_runs_days: int = 30  # run history (job_runs, retired versions' rows) kept this long
    keep_versions: int = 3  # ready versions kept per kind, besides active and rollback target

    def __post_init__(self) -> None:
        for name, low in (("events_days", 1), ("job_runs_days", 1), ("keep_versions", 1)):
            value = getattr(self, name)
            if value is None and name == "events_days":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}"
                                 + (" (or omitted: keep all events)" if name == "events_days"
                                    else "") + f", got {value!r}")


def maintain(conn: psycopg.Connection, config: MaintenanceConfig,
             now: datetime | None = None) -> dict[str, Any]:
    """Run the maintenance steps on `conn` (a non-autocommit connection); `now` is the clock
    the retention windows count back from (None: the server's now()). Returns what it did."""
    sql = _sql()
    versions = gc(conn, config.keep_versions)
    candidates = delete_stale(conn)
    history = {"now": now, "days": config.job_runs_days}
    retired_rows = conn.execute(sql["delete_retired_rows"], history).rowcount
    activations = conn.execute(sql["delete_orphan_activations"]).rowcount
    runs = conn.execute(sql["delete_old_runs"], history).rowcount
    conn.commit()
    partitions: list[str] = []
    rejected = 0
    if config.events_days is not None:
        window = {"now": now, "days": config.events_days}
        for name, _ in conn.execute(sql["old_event_partitions"], window).fetchall():
            conn.execute(pgsql.SQL(sql["drop_event_partition"]).format(
                partition=pgsql.Identifier(name)))
            conn.commit()  # one partition at a time: a short lock on recsys.events each
            partitions.append(name)
            log.info("maintenance: dropped event partition %s", name)
        rejected = conn.execute(sql["delete_old_rejected"], window).rowcount
        conn.commit()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute(sql["vacuum"])
    finally:
        conn.autocommit = autocommit
    return {"dropped_versions": versions, "deleted_version_rows": retired_rows,
            "deleted_activations": activations, "deleted_job_runs": runs,
            "dropped_event_partitions": partitions, "deleted_rejected_events": rejected,
            "deleted_candidate_rows": candidates}
