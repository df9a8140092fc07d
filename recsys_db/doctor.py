"""`recsys-db doctor`: check a deployment end to end and say how to fix what is wrong.

`run_checks(url)` runs the checks in order - server, pgvector, privileges, migrations, models,
hnsw, serving, worker-lag, jobs, forgotten, pooler - and never raises: each outcome, an
unexpected error included, is a `Check` whose `fix` (for warn and fail) is the command to run.
A check whose prerequisite failed is not run: it is reported as failed with detail "skipped:
<first failed check> failed" and no fix (that check has it). hnsw and worker-lag need an
active interest version; without one they are skipped the same way, as a warning when models
only warned. Nothing is changed: the embedded server is not started, the database is only read
(pooler also tries PgBouncer's admin console, database "pgbouncer", at the same address).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import psycopg
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from recsys_db import config, db, embedded, migrate
from recsys_db.forget import awaiting_retraining
from recsys_db.interest import LOOKBACK_IDS, watermark_key
from recsys_db.sqlfiles import queries

Status = Literal["ok", "warn", "fail"]

MIN_SERVER_VERSION_NUM = 140000
MIN_PGVECTOR = db.MIN_PGVECTOR
SERVING_WARN_MS = 50.0
LAG_WARN_SECONDS = 60.0
LONG_RUN_HOURS = 6.0
DEAD_RUN_GRACE_SECONDS = 60.0  # a run inserts its row a moment before taking its lock
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT = "30s"

MODEL_JOBS = {"interest": "train-interest", "cf": "train-cf", "ranker": "train-ranker"}
START_SERVER = "recsys-db db start"
MIGRATE = "recsys-db migrate"
RUN_WORKER = "recsys-db worker"
INGEST = "recsys-db ingest EVENTS.csv --format taobao|movielens|csv"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def verdict(checks: Iterable[Check]) -> str:
    """'healthy' (all ok), 'degraded' (warnings only) or 'broken' (any failure)."""
    statuses = {c.status for c in checks}
    return "broken" if "fail" in statuses else "degraded" if "warn" in statuses else "healthy"


@dataclass
class _Context:
    url: str | None
    conn: psycopg.Connection | None = None
    embedded: bool = False
    active: dict[str, int] = field(default_factory=dict)  # kind -> active version_id
    dims: dict[str, int | None] = field(default_factory=dict)
    # kind -> version recsys.install_serving() bakes into the serving functions right now
    servable: dict[str, int] = field(default_factory=dict)
    done: dict[str, Check] = field(default_factory=dict)
    root_cause: dict[str, str] = field(default_factory=dict)  # skipped check -> failed check

    @property
    def c(self) -> psycopg.Connection:
        assert self.conn is not None, "server check did not connect"
        return self.conn


def run_checks(url: str | None = None) -> list[Check]:
    """All checks in order against `url` (default: RECSYS_DATABASE_URL, else the embedded
    server, which must already be running)."""
    ctx = _Context(url)
    try:
        for name, check, needs, fallback_fix in _CHECKS:
            ctx.done[name] = _skipped(name, needs, ctx) or _guarded(name, check, ctx,
                                                                    fallback_fix)
    finally:
        if ctx.conn is not None:
            ctx.conn.close()
    return list(ctx.done.values())


def _skipped(name: str, needs: tuple[str, ...], ctx: _Context) -> Check | None:
    """A failed check for `name` when a prerequisite failed, naming the first root cause."""
    failed = [ctx.root_cause.get(n, n) for n in needs if ctx.done[n].status == "fail"]
    if not failed:
        return None
    root = min(failed, key=CHECK_NAMES.index)
    ctx.root_cause[name] = root
    return Check(name, "fail", f"skipped: {root} failed")


def _guarded(name: str, check: Callable[[_Context], Check], ctx: _Context, fix: str) -> Check:
    try:
        return check(ctx)
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it never raises
        return Check(name, "fail", f"error: {type(exc).__name__}: {_first_line(exc)}", fix)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else "(no message)"


def _psql(statement: str) -> str:
    """A shell command running `statement` (no double quotes, $, backquotes or backslashes)."""
    return f'psql "$(recsys-db db url)" -c "{statement}"'


def _sql_text(value: str) -> str:
    """`value` as a SQL literal that is safe inside _psql's double quotes."""
    return "'" + value + "'" if re.fullmatch(r"[\w.:@+-]*", value) else "'<user_id>'"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _sql() -> dict[str, str]:
    return queries("doctor.sql")


# ------------------------------------------------------------------------------- checks


def _server(ctx: _Context) -> Check:
    if ctx.url is None and config.database_url_from_env() is None:
        ctx.embedded = True
        if not embedded.status().running:
            return Check("server", "fail",
                         f"the embedded PostgreSQL is not running (data in "
                         f"{embedded.pgdata_dir()}) and {config.DATABASE_URL_ENV} is not set",
                         START_SERVER)
    try:
        ctx.url = ctx.url or (embedded.url() if ctx.embedded else db.database_url())
        where = _where(ctx.url)
        ctx.conn = db.connect(ctx.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - a bad URL or an unreachable server
        fix = ("recsys-db db stop && recsys-db db start" if ctx.embedded else
               f"check {config.DATABASE_URL_ENV} (host, port, database, credentials) and that "
               f"its server runs, or unset it and run {START_SERVER}")
        return Check("server", "fail", _first_line(exc), fix)
    ctx.conn.execute(_sql()["session"], {"statement_timeout": STATEMENT_TIMEOUT})
    number, version, database = ctx.conn.execute(_sql()["server"]).fetchone()
    if number < MIN_SERVER_VERSION_NUM:
        return Check("server", "fail",
                     f"PostgreSQL {version} at {where}: recsys-db needs 14 or newer",
                     f"upgrade the server to PostgreSQL 14+, or unset "
                     f"{config.DATABASE_URL_ENV} and run {START_SERVER} (PostgreSQL 18)")
    return Check("server", "ok", f"PostgreSQL {version}, database {database} at {where}")


def _where(url: str) -> str:
    """user@host:port of a URL (no password); raises on a non-PostgreSQL URL."""
    u = make_url(url)
    if u.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"not a postgresql:// URL (driver {u.drivername!r})")
    host = u.host or u.query.get("host") or "localhost"
    port = f":{u.port}" if u.port else ""
    return f"{u.username or ''}{'@' if u.username else ''}{host}{port}"


def _pgvector(ctx: _Context) -> Check:
    available, installed, migrated, superuser = ctx.c.execute(_sql()["pgvector"]).fetchone()
    need = ".".join(map(str, MIN_PGVECTOR[:2]))
    if installed is None and available is None:
        return Check("pgvector", "fail", "the vector extension is not available on this server",
                     f"install pgvector >= {need} on the server (package "
                     f"postgresql-<major>-pgvector), or unset {config.DATABASE_URL_ENV} "
                     f"and run {START_SERVER}")
    if installed is None and not migrated and not superuser:
        return Check("pgvector", "fail",
                     f"pgvector {available} is available but not installed in this database, "
                     "and this role is not a superuser: an admin must create it first",
                     f"as an admin: CREATE EXTENSION vector; then {MIGRATE}")
    if installed is None and not migrated:
        return Check("pgvector", "fail",
                     f"pgvector {available} is available but not installed in this database "
                     "(migrating installs it)", MIGRATE)
    if installed is None:
        return Check("pgvector", "fail",
                     f"pgvector ({available} available) is not installed, but schema recsys "
                     "exists: the extension was dropped after migration (DROP EXTENSION ... "
                     "CASCADE also drops the vector columns of recsys.user_states and "
                     "recsys.item_embeddings). Rebuilding the schema drops recsys.events too: "
                     "export them first if they exist nowhere else, reload them and run the "
                     "jobs again afterwards",
                     f"recsys-db migrate --to base && {MIGRATE}")
    if _version(installed) < MIN_PGVECTOR:
        fix = (_psql("ALTER EXTENSION vector UPDATE")
               if available and _version(available) >= MIN_PGVECTOR else
               f"install pgvector >= {need} on the server, then "
               + _psql("ALTER EXTENSION vector UPDATE"))
        return Check("pgvector", "fail", f"pgvector {installed} is installed; recsys-db needs "
                     f">= {need}", fix)
    note = f" ({available} available)" if available and available != installed else ""
    return Check("pgvector", "ok", f"pgvector {installed}{note}")


def _privileges(ctx: _Context) -> Check:
    """What a role that is not a superuser needs (managed PostgreSQL: RDS, Cloud SQL, ...)."""
    app_role = os.environ.get("RECSYS_APP_ROLE", "recsys_app")  # named by migration 0003
    (user, database, superuser, createrole, db_create, db_temp, public_create, migrated,
     has_vector, app_exists, not_owned, n_not_owned) = ctx.c.execute(
        _sql()["privileges"], {"app_role": app_role}).fetchone()
    if superuser:
        return Check("privileges", "ok", f"role {user} is a superuser")
    on_db = f"ON DATABASE {_ident(database)} TO {_ident(user)}"
    missing: list[tuple[str, str]] = []  # (what, how an admin grants it)
    if not has_vector:
        missing.append(("extension vector (an admin must create it first: it needs a "
                        "superuser or the platform's admin role)", "CREATE EXTENSION vector"))
    if not db_temp:
        missing.append(("TEMPORARY on the database (ingest stages rows in pg_temp)",
                        f"GRANT TEMPORARY {on_db}"))
    if not migrated and not db_create:
        missing.append(("CREATE on the database (migrate creates schema recsys)",
                        f"GRANT CREATE {on_db}"))
    if not migrated and not public_create:
        missing.append(("CREATE on schema public (migrate creates "
                        "public.recsys_alembic_version)",
                        f"GRANT CREATE ON SCHEMA public TO {_ident(user)}"))
    if not migrated and not app_exists and not createrole:
        missing.append((f"CREATEROLE (migrate creates the NOLOGIN role {app_role})",
                        f"CREATE ROLE {_ident(app_role)} NOLOGIN"))
    if not_owned:
        more = ", ..." if n_not_owned > len(not_owned) else ""
        missing.append((f"ownership of {n_not_owned} object(s) recsys-db made "
                        f"({', '.join(not_owned)}{more}): jobs create and replace partitions, "
                        "indexes and functions",
                        "run recsys-db as the role that ran recsys-db migrate"))
    if missing:
        return Check("privileges", "fail",
                     f"role {user} (not a superuser) lacks: " + "; ".join(m for m, _ in missing),
                     "as an admin: " + "; ".join(fix for _, fix in missing))
    return Check("privileges", "ok", f"role {user} is not a superuser and has every privilege "
                 "recsys-db needs")


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _migrations(ctx: _Context) -> Check:
    sa_url = make_url(ctx.url).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(sa_url, poolclass=sa.pool.NullPool,
                              connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        current = migrate.current_revision(engine)
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(migrate.alembic_config())
    head = script.get_current_head()
    if current == head:
        return Check("migrations", "ok", f"schema recsys at head ({head})")
    if current is None:
        return Check("migrations", "fail",
                     "this database is not migrated (no recsys-db revision recorded)", MIGRATE)
    if current not in {r.revision for r in script.walk_revisions()}:
        return Check("migrations", "fail",
                     f"the database is at revision {current}, which this recsys-db does not "
                     f"know (its head is {head}): a newer recsys-db migrated it",
                     "upgrade recsys-db to the version that migrated this database")
    return Check("migrations", "fail", f"schema recsys at revision {current}; head is {head}",
                 MIGRATE)


def _models(ctx: _Context) -> Check:
    rows = ctx.c.execute(_sql()["active_models"]).fetchall()
    found: dict[str, tuple[int, bool, bool, bool, bool]] = {}
    for kind, version, dim, has_blob, has_part, has_rows, has_scorer in rows:
        found[kind] = (version, has_blob, has_part, has_rows, has_scorer)
        ctx.active[kind] = version
        ctx.dims[kind] = dim
        if (kind == "interest" and dim is not None and has_part) or \
                (kind == "ranker" and has_scorer):
            ctx.servable[kind] = version
    fails: list[str] = []
    warns: list[str] = []
    retrain: set[str] = set()
    if "interest" not in found and "cf" not in found:
        fails.append("no active interest or cf model: recommend() can only return the user's "
                     "own recent items, and new users get nothing")
        retrain |= {"interest", "cf"}
    elif "interest" not in found:
        warns.append("no active interest model: recommend() has CF, recent and trending "
                     "candidates but none from the user's interest vector; the worker idles")
        retrain.add("interest")
    elif "cf" not in found:
        warns.append("no active cf model: recommend() has no CF neighbours and no trending "
                     "items, so users without history get nothing")
        retrain.add("cf")
    if "ranker" not in found:
        warns.append("no active ranker: recommend() orders candidates by a fixed blend")
        retrain.add("ranker")
    if "interest" in found:
        version, has_blob, has_part, has_rows, _ = found["interest"]
        part = f"recsys.item_embeddings_v{version}"
        if not has_blob:
            fails.append(f"interest v{version} has no weights in recsys.model_blobs: the "
                         "worker cannot load it")
        if not has_part:
            fails.append(f"{part} (interest v{version}'s item vectors) is missing")
        elif not has_rows:
            fails.append(f"{part} is empty or not attached to recsys.item_embeddings")
        if not (has_blob and has_part and has_rows):
            retrain.add("interest")
    if "ranker" in found and not found["ranker"][4]:
        version = found["ranker"][0]
        fails.append(f"recsys.ranker_score_v{version}(double precision[]) of the active "
                     f"ranker v{version} is missing: recommend() fails")
        retrain.add("ranker")
    fix = None
    if retrain:
        steps = [f"recsys-db jobs run {MODEL_JOBS[k]}" for k in MODEL_JOBS if k in retrain]
        if not ctx.c.execute(_sql()["has_events"]).fetchone()[0]:
            steps.insert(0, INGEST)
        fix = " && ".join(steps)
    if fails or warns:
        return Check("models", "fail" if fails else "warn", "; ".join(fails + warns), fix)
    return Check("models", "ok", ", ".join(f"{k} v{found[k][0]}" for k in MODEL_JOBS))


def _no_interest(name: str, ctx: _Context) -> Check:
    if ctx.done["models"].status == "fail":
        return Check(name, "fail", "skipped: models failed")
    return Check(name, "warn", "skipped: no active interest version (see models)")


def _hnsw(ctx: _Context) -> Check:
    version = ctx.servable.get("interest")  # None too when its partition is missing (models)
    if version is None:
        return _no_interest("hnsw", ctx)
    part = f"item_embeddings_v{version}"
    rows = ctx.c.execute(_sql()["hnsw_indexes"], {"version": version}).fetchall()
    if not rows:
        create = (f"CREATE INDEX CONCURRENTLY {part}_hnsw ON recsys.{part} USING hnsw "
                  f"((embedding::vector({ctx.dims.get('interest')})) vector_ip_ops)")
        return Check("hnsw", "fail", f"no HNSW index on recsys.{part}: every recommend() scans "
                     "all item vectors", _psql(create))
    broken = [name for name, valid, ready in rows if not (valid and ready)]
    if broken:
        return Check("hnsw", "fail",
                     f"HNSW index(es) {', '.join(broken)} on recsys.{part} not valid or not "
                     "ready (an interrupted CREATE INDEX CONCURRENTLY?): the planner skips them",
                     " && ".join(_psql(f"REINDEX INDEX CONCURRENTLY recsys.{n}")
                                 for n in broken))
    return Check("hnsw", "ok", f"{', '.join(r[0] for r in rows)} on recsys.{part}: "
                 "valid and ready")


def _serving(ctx: _Context) -> Check:
    sql = _sql()
    user = ctx.c.execute(sql["serving_user"]).fetchone()[0]
    if user is None:
        return Check("serving", "warn", "no users yet: nothing to recommend", INGEST)
    install = _psql("SELECT recsys.install_serving()")
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
            _psql(f"SELECT * FROM recsys.recommend({_sql_text(user)}, k => 10)")
        return Check("serving", "fail", f"{call} failed: {_first_line(exc)}", fix)
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
                     _psql("ANALYZE"))
    return Check("serving", "ok", detail)


_MISSING_OBJECT = {"42883", "42P01", "42703"}  # undefined function, table, column


def _stale_serving(ctx: _Context) -> str | None:
    """What the generated serving functions bake in that differs from the active versions."""
    candidates, score = ctx.c.execute(_sql()["serving_functions"]).fetchone()
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


def _worker_lag(ctx: _Context) -> Check:
    version = ctx.active.get("interest")
    if version is None:
        return _no_interest("worker-lag", ctx)
    users, waited = ctx.c.execute(_sql()["worker_lag"],
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


def _jobs(ctx: _Context) -> Check:
    sql = _sql()
    last = ctx.c.execute(sql["job_last_runs"]).fetchall()
    running = ctx.c.execute(sql["job_running"]).fetchall()
    problems: list[str] = []
    fixes: list[str] = []
    for job, run_id, status, finished_at, error in last:
        if status == "failed":
            when = f", {finished_at:%Y-%m-%d %H:%M}" if finished_at else ""
            problems.append(f"the last {job} run ({run_id}{when}) failed: "
                            f"{_first_line(error or 'no error recorded')}")
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


def _forgotten(ctx: _Context) -> Check:
    """Forgotten users (recsys-db forget) whose data the active models may still hold."""
    forgotten, awaiting, stale = awaiting_retraining(ctx.c)
    if awaiting == 0:
        return Check("forgotten", "ok", f"{forgotten} forgotten user(s); every active model was "
                     "built after their forget" if forgotten else "no forgotten users")
    jobs = [job for kind, job in MODEL_JOBS.items() if any(s.startswith(f"{kind} v")
                                                            for s in stale)]
    if "category transitions" in stale:
        jobs.append("refresh-transitions")
    return Check("forgotten", "warn",
                 f"{awaiting} forgotten users awaiting retraining: {', '.join(stale)} "
                 "predate their forget", " && ".join(f"recsys-db jobs run {j}" for j in jobs))


# Ports and hosts of transaction poolers, when their admin console does not answer.
_POOLER_HINTS = {6432: "port 6432 is PgBouncer's", 6543: "port 6543 is Supavisor's (Supabase) "
                 "transaction pooler's"}
DIRECT = ("point RECSYS_DATABASE_URL of the worker, scheduler and jobs at the server itself (its "
          "own port, usually 5432) and keep the pooler for applications")


def _pooler(ctx: _Context) -> Check:
    """The worker LISTENs for new events and jobs hold session advisory locks: both need a
    session of their own, which a transaction pooler does not keep."""
    if ctx.embedded:
        return Check("pooler", "ok", "direct connection to the embedded server")
    url = make_url(ctx.url)
    where = _where(ctx.url)
    mode = _pgbouncer_pool_mode(url)
    if mode is None:
        hint = _POOLER_HINTS.get(url.port or 0) or (
            "the host name is a Neon pooler's" if "-pooler" in (url.host or "") else None)
        if hint is None:
            return Check("pooler", "ok", f"direct connection at {where} (no PgBouncer there)")
        return Check("pooler", "warn", f"{where}: {hint}, likely transaction pooling: the "
                     "worker's LISTEN and the jobs' advisory locks need a direct connection",
                     DIRECT)
    if mode == "session":
        return Check("pooler", "ok", f"{where} is PgBouncer in session pooling mode (LISTEN and "
                     "advisory locks keep their session)")
    return Check("pooler", "warn",
                 f"{where} is PgBouncer ({mode or 'pool mode unknown'} pooling): the worker's "
                 "LISTEN and the jobs' advisory locks need a direct connection (a transaction "
                 "pooler hands the session to other clients: notifications are lost and a job's "
                 "lock may be held by another client's connection)", DIRECT)


def _pgbouncer_pool_mode(url: sa.engine.URL) -> str | None:
    """PgBouncer's pool mode for url's database; "" when PgBouncer answers but will not say,
    None when no PgBouncer answers (PostgreSQL has no database "pgbouncer")."""
    console = url.set(drivername="postgresql", database="pgbouncer")
    try:
        with psycopg.connect(console.render_as_string(hide_password=False), autocommit=True,
                             connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            cur = conn.execute("SHOW DATABASES")
            names = [d.name for d in cur.description or []]
            modes = [dict(zip(names, row, strict=True)).get("pool_mode") for row in cur
                     if row[names.index("name")] == url.database]
            if modes and modes[0]:
                return str(modes[0])
            cur = conn.execute("SHOW CONFIG")
            names = [d.name for d in cur.description or []]
            return next((str(row[names.index("value")]) for row in cur
                         if row[names.index("key")] == "pool_mode"), "")
    except psycopg.Error as exc:
        return "" if "not allowed" in str(exc) else None


_CHECKS: list[tuple[str, Callable[[_Context], Check], tuple[str, ...], str]] = [
    ("server", _server, (), START_SERVER),
    ("pgvector", _pgvector, ("server",), MIGRATE),
    ("privileges", _privileges, ("server",), "see README: Managed PostgreSQL"),
    ("migrations", _migrations, ("server",), MIGRATE),
    ("models", _models, ("migrations",), "recsys-db jobs run train-interest"),
    ("hnsw", _hnsw, ("pgvector", "migrations"), "recsys-db jobs run train-interest"),
    ("serving", _serving, ("pgvector", "migrations"),
     _psql("SELECT recsys.install_serving()")),
    ("worker-lag", _worker_lag, ("migrations",), RUN_WORKER),
    ("jobs", _jobs, ("migrations",), "recsys-db jobs list"),
    ("forgotten", _forgotten, ("migrations",), "recsys-db jobs run train-cf"),
    ("pooler", _pooler, ("server",), DIRECT),
]
CHECK_NAMES = tuple(name for name, *_ in _CHECKS)
