"""The privileges and pooler checks: what a managed server's role and a connection pooler allow."""

from __future__ import annotations

import os
import re

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from recsys_db.doctor.base import CONNECT_TIMEOUT_SECONDS, Check, Context, address, doctor_sql


def check_privileges(ctx: Context) -> Check:
    """What a role that is not a superuser needs (managed PostgreSQL: RDS, Cloud SQL, ...)."""
    app_role = os.environ.get("RECSYS_APP_ROLE", "recsys_app")  # named by migration 0003
    (user, database, superuser, createrole, db_create, db_temp, public_create, migrated,
     has_vector, app_exists, not_owned, n_not_owned) = ctx.c.execute(
        doctor_sql()["privileges"], {"app_role": app_role}).fetchone()
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


# Ports and hosts of transaction poolers, when their admin console does not answer.
_POOLER_HINTS = {6432: "port 6432 is PgBouncer's", 6543: "port 6543 is Supavisor's (Supabase) "
                 "transaction pooler's"}
DIRECT = ("point RECSYS_DATABASE_URL of the worker, scheduler and jobs at the server itself (its "
          "own port, usually 5432) and keep the pooler for applications")


def check_pooler(ctx: Context) -> Check:
    """The worker LISTENs for new events and jobs hold session advisory locks: both need a
    session of their own, which a transaction pooler does not keep."""
    if ctx.embedded:
        return Check("pooler", "ok", "direct connection to the embedded server")
    url = make_url(ctx.url)
    where = address(ctx.url)
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
