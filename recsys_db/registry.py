"""The model registry: list, activate, roll back, garbage-collect and promote model versions.

A version is written complete and inactive by its job, then *promoted*: it becomes active only if
its validation metric is not worse than the active version's by more than a tolerance. Every
activation is logged in recsys.model_activations, so `rollback` returns to exactly the version
that served before. `gc` removes the data of old versions (vectors, compiled functions, states)
but never the active version or the one rollback would return to; their registry rows stay, as
'retired', so metrics across versions remain visible.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from recsys_db.errors import RecsysError

KINDS = ("interest", "cf", "ranker")
# The validation metric a new version must not lose on (higher is better); kinds without one
# (cf) are activated unconditionally.
PROMOTION_METRIC = {"interest": "valid_score", "ranker": "valid_ndcg10"}
DEFAULT_TOLERANCE = 0.05


class RegistryError(RecsysError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class VersionInfo:
    version_id: int
    kind: str
    status: str
    active: bool
    created_at: datetime
    activated_at: datetime | None
    metric: float | None
    metrics: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"version_id": self.version_id, "kind": self.kind, "status": self.status,
                "active": self.active, "created_at": self.created_at.isoformat(),
                "activated_at": self.activated_at.isoformat() if self.activated_at else None,
                "metric": self.metric, "metric_name": PROMOTION_METRIC.get(self.kind)}


@dataclass(frozen=True)
class Promotion:
    version_id: int
    activated: bool
    reason: str
    replaced: int | None = None


def list_versions(conn: psycopg.Connection, kind: str | None = None) -> list[VersionInfo]:
    """Versions (newest first), optionally of one kind."""
    if kind is not None and kind not in KINDS:
        raise RegistryError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    rows = conn.execute(
        "SELECT version_id, kind, status, active, created_at, activated_at, metrics "
        "FROM recsys.model_versions WHERE %(kind)s::text IS NULL OR kind = %(kind)s "
        "ORDER BY version_id DESC", {"kind": kind}).fetchall()
    return [VersionInfo(v, k, s, a, c, at, _metric(k, m), m) for v, k, s, a, c, at, m in rows]


def _metric(kind: str, metrics: dict[str, Any]) -> float | None:
    value = metrics.get(PROMOTION_METRIC.get(kind, ""))
    return float(value) if isinstance(value, int | float) else None


def activate(conn: psycopg.Connection, version: int, reason: str = "activated by hand"
             ) -> int | None:
    """Make `version` the active one of its kind, in one short transaction; the switch is
    logged in recsys.model_activations (what `rollback` reads). Returns the version it replaced.
    Called inside an open transaction, the switch becomes part of it (psycopg savepoint) and
    commits with it.
    """
    with conn.transaction():
        row = conn.execute("SELECT kind, status FROM recsys.model_versions WHERE version_id = %s "
                           "FOR UPDATE", (version,)).fetchone()
        if row is None:
            raise RegistryError(f"no model version {version}")
        kind, status = row
        if status != "ready":
            raise RegistryError(f"model version {version} is {status}, not ready")
        previous = conn.execute(
            "UPDATE recsys.model_versions SET active = false WHERE kind = %s AND active "
            "AND version_id <> %s RETURNING version_id", (kind, version)).fetchone()
        previous_id = None if previous is None else int(previous[0])
        conn.execute("UPDATE recsys.model_versions SET active = true, activated_at = now() "
                     "WHERE version_id = %s", (version,))
        conn.execute("INSERT INTO recsys.model_activations (kind, version_id, "
                     "previous_version_id, reason) VALUES (%s, %s, %s, %s)",
                     (kind, version, previous_id, reason))
        if conn.execute("SELECT to_regproc('recsys.install_serving')").fetchone()[0]:
            conn.execute("SELECT recsys.install_serving()")  # serving functions follow
    return previous_id


def active_version(conn: psycopg.Connection, kind: str) -> int | None:
    row = conn.execute("SELECT version_id FROM recsys.model_versions WHERE kind = %s AND active",
                       (kind,)).fetchone()
    return None if row is None else int(row[0])


def rollback_target(conn: psycopg.Connection, kind: str) -> tuple[int, int]:
    """(active version, the version active before it) of `kind`."""
    row = conn.execute(
        "SELECT a.version_id, a.previous_version_id FROM recsys.model_activations a "
        "JOIN recsys.model_versions mv ON mv.version_id = a.version_id AND mv.active "
        "WHERE a.kind = %s ORDER BY a.activation_id DESC LIMIT 1", (kind,)).fetchone()
    if row is None:
        raise RegistryError(f"no active {kind} version to roll back from")
    current, previous = row
    if previous is None:
        raise RegistryError(f"{kind} version {current} was the first one activated: "
                            "there is nothing to roll back to")
    status = conn.execute("SELECT status FROM recsys.model_versions WHERE version_id = %s",
                          (previous,)).fetchone()
    if status is None or status[0] != "ready":
        raise RegistryError(f"the previous {kind} version {previous} is "
                            f"{'gone' if status is None else status[0]}: cannot roll back")
    return int(current), int(previous)


def rollback(conn: psycopg.Connection, kind: str) -> tuple[int, int]:
    """Re-activate the version of `kind` that was active before the current one."""
    if kind not in KINDS:
        raise RegistryError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    current, previous = rollback_target(conn, kind)
    activate(conn, previous, reason=f"rollback from version {current}")
    return current, previous


def promote(conn: psycopg.Connection, version: int, tolerance: float | None = None,
            force: bool = False) -> Promotion:
    """Activate `version` unless its validation metric is worse than the active version's by
    more than `tolerance` (relative: new >= active * (1 - tolerance))."""
    from recsys_db.settings import load_settings

    tolerance = load_settings().activation_tolerance if tolerance is None else tolerance
    kind, metrics = conn.execute("SELECT kind, metrics FROM recsys.model_versions "
                                 "WHERE version_id = %s", (version,)).fetchone()
    active = active_version(conn, kind)
    name = PROMOTION_METRIC.get(kind)
    new = _metric(kind, metrics)
    reason = "first version of its kind"
    if active is not None:
        old_metrics = conn.execute("SELECT metrics FROM recsys.model_versions "
                                   "WHERE version_id = %s", (active,)).fetchone()[0]
        old = _metric(kind, old_metrics)
        formats = dict(conn.execute("SELECT version_id, format FROM recsys.model_blobs "
                                    "WHERE version_id IN (%s, %s)", (version, active)).fetchall())
        conn.commit()
        if force:
            reason = "activation forced"
        elif len(set(formats.values())) > 1:
            # e.g. the first stay-or-migrate model after an upgrade: its valid_score is next-item
            # NDCG, the old one's was item + category, and this code cannot load the old weights
            reason = (f"model format {formats[version]!r} replaces {formats[active]!r}: "
                      "metrics not comparable")
        elif name is None or new is None or old is None:
            reason = f"no validation metric to compare ({name or 'none for ' + kind})"
        elif new < old * (1 - tolerance):
            return Promotion(version, False,
                             f"kept inactive: {name} {new:.4f} is worse than active version "
                             f"{active}'s {old:.4f} by more than {tolerance:.0%}")
        else:
            reason = f"{name} {new:.4f} vs active version {active}'s {old:.4f} " \
                     f"(tolerance {tolerance:.0%})"
    conn.commit()  # activate's transaction must be its own, not a savepoint of ours
    replaced = activate(conn, version, reason)
    return Promotion(version, True, reason, replaced)


def drop_versions(conn: psycopg.Connection, versions: list[int], keep_rows: bool = False) -> None:
    """Remove the data of inactive `versions` (partitions, functions, rows), committing after
    each; keep_rows leaves their registry rows as 'retired'."""
    for version in versions:
        conn.execute("SELECT recsys.drop_model_version(%s, %s)", (int(version), keep_rows))
        conn.commit()


def gc(conn: psycopg.Connection, keep: int, dry_run: bool = False) -> list[int]:
    """Drop the data of all but the newest `keep` ready versions of each kind (their rows stay,
    'retired'), and helper versions orphaned by dead runs. Never touched: the active version
    and the one `rollback` would return to. Returns the versions dropped."""
    if keep < 1:
        raise RegistryError("--keep must be at least 1")
    protected: set[int] = set()
    for kind in KINDS:
        active = active_version(conn, kind)
        if active is not None:
            protected.add(active)
            with contextlib.suppress(RegistryError):
                protected.add(rollback_target(conn, kind)[1])
    rows = conn.execute(
        "SELECT version_id FROM (SELECT version_id, status, row_number() OVER "
        "(PARTITION BY kind ORDER BY version_id DESC) AS n FROM recsys.model_versions "
        "WHERE status = 'ready') v WHERE n > %s ORDER BY version_id", (keep,)).fetchall()
    doomed = [int(v) for (v,) in rows if v not in protected]
    # helper versions left by a run that is no longer running (or has no run), an hour old
    orphans = [int(v) for (v,) in conn.execute(
        "SELECT mv.version_id FROM recsys.model_versions mv LEFT JOIN recsys.job_runs r "
        "ON r.run_id = mv.job_run_id WHERE mv.status = 'building' AND NOT mv.active "
        "AND r.status IS DISTINCT FROM 'running' AND mv.created_at < now() - interval '1 hour' "
        "ORDER BY 1").fetchall()]
    conn.commit()
    if not dry_run:
        drop_versions(conn, doomed, keep_rows=True)
        drop_versions(conn, orphans)
    return sorted(doomed + orphans)


def cleanup_abandoned(conn: psycopg.Connection, job: str, own_run_id: int) -> dict[str, Any]:
    """Clean up after dead runs of `job`. Call only while holding the job's advisory lock:
    then no other run of it is alive, so its 'running' rows are from processes that died.
    Their half-built ('building') versions are removed."""
    dead = [r for (r,) in conn.execute(
        "UPDATE recsys.job_runs SET status = 'failed', finished_at = now(), "
        "error = 'abandoned: the process died (its advisory lock was released)' "
        "WHERE job = %s AND status = 'running' AND run_id <> %s RETURNING run_id",
        (job, own_run_id)).fetchall()]
    leftovers = [v for (v,) in conn.execute(
        "SELECT mv.version_id FROM recsys.model_versions mv JOIN recsys.job_runs r "
        "ON r.run_id = mv.job_run_id WHERE mv.status = 'building' AND NOT mv.active "
        "AND r.job = %s AND r.status <> 'running' ORDER BY 1", (job,)).fetchall()]
    conn.commit()
    drop_versions(conn, leftovers)
    return {"abandoned_runs": dead, "dropped_versions": leftovers} if dead or leftovers else {}

