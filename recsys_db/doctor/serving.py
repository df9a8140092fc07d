"""The serving check: a real recommend() call, timed, and whether the generated serving
functions bake in the active versions."""

from __future__ import annotations

import re
import time

import psycopg

from recsys_db.doctor.base import (
    INGEST,
    MODEL_JOBS,
    SERVING_WARN_MS,
    Check,
    Context,
    doctor_sql,
    first_line,
    psql,
)


def check_serving(ctx: Context) -> Check:
    sql = doctor_sql()
    user = ctx.c.execute(sql["serving_user"]).fetchone()[0]
    if user is None:
        return Check("serving", "warn", "no users yet: nothing to recommend", INGEST)
    install = psql("SELECT recsys.install_serving()")
    call = f"recommend({user!r}, k => 10)"
    timings = []
    try:
        for _ in range(4):  # the first call plans and fills caches; report the best of the rest
            t0 = time.perf_counter()
            count = ctx.c.execute(sql["recommend"], {"user_id": user}).fetchone()[0]
            timings.append((time.perf_counter() - t0) * 1000)
    except psycopg.Error as exc:
        # Generated functions referring to something gone: regenerate them; else show it all.
        fix = install if exc.sqlstate in _MISSING_OBJECT else \
            psql(f"SELECT * FROM recsys.recommend({_sql_text(user)}, k => 10)")
        return Check("serving", "fail", f"{call} failed: {first_line(exc)}", fix)
    if count == 0:
        return Check("serving", "fail", f"{call} returned no rows (the cf model provides "
                     "trending items and CF neighbours)", f"recsys-db jobs run {MODEL_JOBS['cf']}")
    stale = _stale_serving(ctx)
    best, first = min(timings[1:]), timings[0]
    detail = f"{call}: {count} rows in {best:.1f} ms (first call {first:.1f} ms)"
    if stale:
        return Check("serving", "warn", f"{detail}; but {stale}", install)
    if best > SERVING_WARN_MS:
        return Check("serving", "warn", f"{detail}: slower than {SERVING_WARN_MS:.0f} ms",
                     psql("ANALYZE"))
    return Check("serving", "ok", detail)


_MISSING_OBJECT = {"42883", "42P01", "42703"}  # undefined function, table, column


def _stale_serving(ctx: Context) -> str | None:
    """What the generated serving functions bake in that differs from the active versions."""
    candidates, score = ctx.c.execute(doctor_sql()["serving_functions"]).fetchone()
    baked = {"interest": set(re.findall(r"item_embeddings_v(\d+)", candidates or "")),
             "ranker": set(re.findall(r"ranker_score_v(\d+)", score or ""))}
    problems = []
    for kind, versions in baked.items():
        want = {str(ctx.servable[kind])} if kind in ctx.servable else set()
        if versions != want:
            problems.append(f"the serving functions use {kind} {_versions(versions)} where "
                            f"the active versions give {_versions(want)}")
    return "; ".join(problems) or None


def _versions(versions: set[str]) -> str:
    return ", ".join(f"v{v}" for v in sorted(versions)) or "none"


def _sql_text(value: str) -> str:
    """`value` as a SQL literal that is safe inside the double quotes of psql()."""
    return "'" + value + "'" if re.fullmatch(r"[\w.:@+-]*", value) else "'<user_id>'"
