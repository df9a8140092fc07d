"""The model registry: the version lifecycle (create, mark ready, promote), activation,
rollback and garbage collection of model versions.

Every trainer (cf.py, interest/trainer.py, ranker/train.py) goes through the same lifecycle:
`create_version` inserts a 'building' row inside the trainer's transaction, the trainer writes
the version's data, `mark_ready` records its metrics and makes it 'ready' (still inactive), and
`promote` activates it only if its validation metric is not worse than the active version's by
more than the tolerance the caller passes in (the job runner takes it from the settings). Helper
versions a job needs only while it runs stay 'building' and are dropped by it (or, if it dies,
by the next run of the job: see jobs/runner.py).

Every activation is logged in recsys.model_activations, so `rollback` returns to exactly the
version that served before - unless a user was forgotten after that version was built: then
the switch drops its data (recsys.drop_forgotten_versions), and there is nothing to roll back
to. `gc` removes the data of old versions (vectors, compiled functions,
states) but never the active version or the one rollback would return to; their registry rows
stay, as 'retired', so metrics across versions remain visible.

This module sits just above the database: it imports nothing of recsys-db but errors and the
SQL files (sql/registry.sql).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from recsys_db.errors import RecsysError
from recsys_db.sqlfiles import queries

KINDS = ("interest", "cf", "ranker")
# The validation metric a new version must not lose on (higher is better); kinds without one
# (cf) are activated unconditionally.
PROMOTION_METRIC = {"interest": "valid_score", "ranker": "valid_ndcg10"}
DEFAULT_TOLERANCE = 0.05


class RegistryError(RecsysError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to)."""


def _sql() -> dict[str, str]:
    return queries("registry.sql")


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


def create_version(conn: psycopg.Connection, kind: str, params: dict[str, Any], *,
                   metrics: dict[str, Any] | None = None, dim: int | None = None,
                   job_run_id: int | None = None) -> int:
    """A new 'building' version of `kind` (in the caller's transaction); returns its id.

    The trainer writes the version's data, then calls `mark_ready`; a version left 'building'
    is a helper (never activated), dropped by its job or by the next run of it."""
    if kind not in KINDS:
        raise RegistryError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    return int(conn.execute(_sql()["create_version"], {
        "kind": kind, "dim": dim, "params": json.dumps(params),
        "metrics": json.dumps(metrics or {}), "job_run_id": job_run_id}).fetchone()[0])


def mark_ready(conn: psycopg.Connection, version: int,
               metrics: dict[str, Any] | None = None) -> None:
    """'building' -> 'ready' (inactive), storing `metrics` when given (in the caller's
    transaction: commit it, then `promote`)."""
    if conn.execute(_sql()["mark_ready"], {
            "version": version,
            "metrics": None if metrics is None else json.dumps(metrics, default=str)}
            ).fetchone() is None:
        raise RegistryError(f"model version {version} is not a 'building' version")


def set_metrics(conn: psycopg.Connection, version: int, metrics: dict[str, Any]) -> None:
    """Replace the stored metrics of `version`."""
    conn.execute(_sql()["set_metrics"], {"version": version,
                                         "metrics": json.dumps(metrics, default=str)})


def version_params(conn: psycopg.Connection, version: int) -> dict[str, Any]:
    """The params stored with `version` (what its trainer was configured with)."""
    return dict(_version(conn, version)[2] or {})


def _version(conn: psycopg.Connection, version: int) -> tuple[str, str, Any, dict[str, Any]]:
    row = conn.execute(_sql()["version"], {"version": version}).fetchone()
    if row is None:
        raise RegistryError(f"no model version {version}")
    return row


def list_versions(conn: psycopg.Connection, kind: str | None = None) -> list[VersionInfo]:
    """Versions (newest first), optionally of one kind."""
    if kind is not None and kind not in KINDS:
        raise RegistryError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    rows = conn.execute(_sql()["list_versions"], {"kind": kind}).fetchall()
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
    sql = _sql()
    with conn.transaction():
        row = conn.execute(sql["lock_version"], {"version": version}).fetchone()
        if row is None:
            raise RegistryError(f"no model version {version}")
        kind, status = row
        if status != "ready":
            raise RegistryError(f"model version {version} is {status}, not ready")
        previous = conn.execute(sql["deactivate_others"],
                                {"kind": kind, "version": version}).fetchone()
        previous_id = None if previous is None else int(previous[0])
        conn.execute(sql["set_active"], {"version": version})
        conn.execute(sql["log_activation"], {"kind": kind, "version": version,
                                             "previous": previous_id, "reason": reason})
        if conn.execute(sql["has_install_serving"]).fetchone()[0]:
            conn.execute(sql["install_serving"])  # serving functions follow
        if previous_id is not None and \
                conn.execute(sql["has_drop_forgotten_versions"]).fetchone()[0]:
            # the replaced version may have learnt from users forgotten since it was built
            conn.execute(sql["drop_forgotten_versions"])
    return previous_id


def active_version(conn: psycopg.Connection, kind: str) -> int | None:
    row = conn.execute(_sql()["active_version"], {"kind": kind}).fetchone()
    return None if row is None else int(row[0])


def rollback_target(conn: psycopg.Connection, kind: str) -> tuple[int, int]:
    """(active version, the version active before it) of `kind`."""
    row = conn.execute(_sql()["last_activation"], {"kind": kind}).fetchone()
    if row is None:
        raise RegistryError(f"no active {kind} version to roll back from")
    current, previous = row
    if previous is None:
        raise RegistryError(f"{kind} version {current} was the first one activated: "
                            "there is nothing to roll back to")
    found = conn.execute(_sql()["version"], {"version": previous}).fetchone()
    if found is None or found[1] != "ready":
        raise RegistryError(f"the previous {kind} version {previous} is "
                            f"{'gone' if found is None else found[1]}: cannot roll back")
    return int(current), int(previous)


def rollback(conn: psycopg.Connection, kind: str) -> tuple[int, int]:
    """Re-activate the version of `kind` that was active before the current one."""
    if kind not in KINDS:
        raise RegistryError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    current, previous = rollback_target(conn, kind)
    activate(conn, previous, reason=f"rollback from version {current}")
    return current, previous


def promote(conn: psycopg.Connection, version: int, tolerance: float,
            force: bool = False) -> Promotion:
    """Activate `version` unless its validation metric is worse than the active version's by
    more than `tolerance` (relative: new >= active * (1 - tolerance)).

    The caller decides the tolerance (jobs: the settings' activation_tolerance)."""
    if not 0 <= tolerance < 1:
        raise RegistryError(f"activation tolerance must be in [0, 1), got {tolerance!r}")
    kind, _, _, metrics = _version(conn, version)
    active = active_version(conn, kind)
    name = PROMOTION_METRIC.get(kind)
    new = _metric(kind, metrics)
    reason = "first version of its kind"
    if active is not None:
        old = _metric(kind, _version(conn, active)[3])
        formats = dict(conn.execute(_sql()["blob_formats"],
                                    {"versions": [version, active]}).fetchall())
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
        conn.execute(_sql()["drop_version"], {"version": int(version), "keep_rows": keep_rows})
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
    sql = _sql()
    rows = conn.execute(sql["old_ready_versions"], {"keep": keep}).fetchall()
    doomed = [int(v) for (v,) in rows if v not in protected]
    orphans = [int(v) for (v,) in conn.execute(sql["orphaned_helpers"]).fetchall()]
    conn.commit()
    if not dry_run:
        drop_versions(conn, doomed, keep_rows=True)
        drop_versions(conn, orphans)
    return sorted(doomed + orphans)
