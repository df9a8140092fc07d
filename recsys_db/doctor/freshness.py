"""The worker-lag and jobs checks: are user states and job runs keeping up?"""

from __future__ import annotations

from recsys_db.doctor.base import (
    DEAD_RUN_GRACE_SECONDS,
    LAG_WARN_SECONDS,
    LONG_RUN_HOURS,
    RUN_WORKER,
    Check,
    Context,
    doctor_sql,
    first_line,
)
from recsys_db.doctor.models import no_interest
from recsys_db.interest import LOOKBACK_IDS, watermark_key


def check_worker_lag(ctx: Context) -> Check:
    version = ctx.active.get("interest")
    if version is None:
        return no_interest("worker-lag", ctx)
    users, waited = ctx.c.execute(doctor_sql()["worker_lag"],
                                  {"version": version, "lookback": LOOKBACK_IDS,
                                   "watermark_key": watermark_key(version)}).fetchone()
    if users == 0:
        return Check("worker-lag", "ok", f"user states of interest v{version} cover all events")
    detail = (f"{users} user(s) with events their interest v{version} state does not cover; "
              f"the oldest has waited up to {_duration(waited or 0)}")
    if (waited or 0) < LAG_WARN_SECONDS:
        return Check("worker-lag", "ok", f"{detail} (the worker is keeping up)")
    return Check("worker-lag", "warn", f"{detail}: is the worker running? (to catch up once: "
                 "recsys-db jobs run refresh-states)", RUN_WORKER)


def check_jobs(ctx: Context) -> Check:
    sql = doctor_sql()
    last = ctx.c.execute(sql["job_last_runs"]).fetchall()
    running = ctx.c.execute(sql["job_running"]).fetchall()
    problems: list[str] = []
    fixes: list[str] = []
    for job, run_id, status, finished_at, error in last:
        if status == "failed":
            when = f", {finished_at:%Y-%m-%d %H:%M}" if finished_at else ""
            problems.append(f"the last {job} run ({run_id}{when}) failed: "
                            f"{first_line(error or 'no error recorded')}")
            fixes.append(f"recsys-db jobs run {job}")
    for run_id, job, host, pid, age, locked in running:
        where = f"run {run_id} of {job} (pid {pid or '?'} on {host or '?'})"
        if not locked and age > DEAD_RUN_GRACE_SECONDS:
            problems.append(f"{where} is marked running but nobody holds the job's lock: "
                            "its process died (the job's next run cleans up after it)")
            fixes.append(f"recsys-db jobs run {job}")
        elif age > LONG_RUN_HOURS * 3600:
            problems.append(f"{where} has been running for {_duration(age)}")
            fixes.append(f"check pid {pid or '?'} on {host or '?'}; if it hangs, kill it and "
                         f"run recsys-db jobs run {job}")
    if problems:
        return Check("jobs", "warn", "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    if not last and not running:
        return Check("jobs", "ok", "no job runs recorded")
    now = f", {len(running)} running" if running else ""
    return Check("jobs", "ok", f"last runs succeeded ({', '.join(r[0] for r in last)}){now}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
