"""The checks in order, what each needs, and the runner that skips a check whose prerequisite
failed and turns an unexpected error into a failed Check."""

from __future__ import annotations

from collections.abc import Callable

from recsys_db.doctor.access import DIRECT, check_pooler, check_privileges
from recsys_db.doctor.base import (
    MIGRATE,
    RUN_WORKER,
    START_SERVER,
    Check,
    Context,
    first_line,
    psql,
)
from recsys_db.doctor.forgotten import check_forgotten
from recsys_db.doctor.freshness import check_jobs, check_worker_lag
from recsys_db.doctor.models import check_hnsw, check_models
from recsys_db.doctor.server import check_migrations, check_pgvector, check_server
from recsys_db.doctor.serving import check_serving


def run_checks(url: str | None = None) -> list[Check]:
    """All checks in order against `url` (default: RECSYS_DATABASE_URL, else the embedded
    server, which must already be running)."""
    ctx = Context(url)
    try:
        for name, check, needs, fallback_fix in _CHECKS:
            ctx.done[name] = _skipped(name, needs, ctx) or _guarded(name, check, ctx,
                                                                    fallback_fix)
    finally:
        if ctx.conn is not None:
            ctx.conn.close()
    return list(ctx.done.values())


def _skipped(name: str, needs: tuple[str, ...], ctx: Context) -> Check | None:
    """A failed check for `name` when a prerequisite failed, naming the first root cause."""
    failed = [ctx.root_cause.get(n, n) for n in needs if ctx.done[n].status == "fail"]
    if not failed:
        return None
    root = min(failed, key=CHECK_NAMES.index)
    ctx.root_cause[name] = root
    return Check(name, "fail", f"skipped: {root} failed")


def _guarded(name: str, check: Callable[[Context], Check], ctx: Context, fix: str) -> Check:
    try:
        return check(ctx)
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it never raises
        return Check(name, "fail", f"error: {type(exc).__name__}: {first_line(exc)}", fix)


_CHECKS: list[tuple[str, Callable[[Context], Check], tuple[str, ...], str]] = [
    ("server", check_server, (), START_SERVER),
    ("pgvector", check_pgvector, ("server",), MIGRATE),
    ("privileges", check_privileges, ("server",), "see README: Managed PostgreSQL"),
    ("migrations", check_migrations, ("server",), MIGRATE),
    ("models", check_models, ("migrations",), "recsys-db jobs run train-interest"),
    ("hnsw", check_hnsw, ("pgvector", "migrations"), "recsys-db jobs run train-interest"),
    ("serving", check_serving, ("pgvector", "migrations"),
     psql("SELECT recsys.install_serving()")),
    ("worker-lag", check_worker_lag, ("migrations",), RUN_WORKER),
    ("jobs", check_jobs, ("migrations",), "recsys-db jobs list"),
    ("forgotten", check_forgotten, ("migrations",), "recsys-db jobs run train-cf"),
    ("pooler", check_pooler, ("server",), DIRECT),
]
CHECK_NAMES = tuple(name for name, *_ in _CHECKS)
