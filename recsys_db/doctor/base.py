"""What every doctor check shares: the Check type and verdict, the settings, the context the
checks fill in as they run, and small helpers for details and fixes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from sqlalchemy.engine import make_url

from recsys_db import db
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
class Context:
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


def first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else "(no message)"


def psql(statement: str) -> str:
    """A shell command running `statement` (no double quotes, $, backquotes or backslashes)."""
    return f'psql "$(recsys-db db url)" -c "{statement}"'


def address(url: str) -> str:
    """user@host:port of a URL (no password); raises on a non-PostgreSQL URL."""
    u = make_url(url)
    if u.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"not a postgresql:// URL (driver {u.drivername!r})")
    host = u.host or u.query.get("host") or "localhost"
    port = f":{u.port}" if u.port else ""
    return f"{u.username or ''}{'@' if u.username else ''}{host}{port}"


def doctor_sql() -> dict[str, str]:
    return queries("doctor.sql")
