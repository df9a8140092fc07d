"""Connections: SQLAlchemy 2 engines on psycopg 3, to RECSYS_DATABASE_URL or the embedded server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from recsys_db import config, embedded
from recsys_db.errors import ConfigError

MIN_PGVECTOR = (0, 5, 0)


def database_url() -> str:
    """SQLAlchemy URL (driver postgresql+psycopg) of the server recsys-db uses."""
    env = config.database_url_from_env()
    if env is None:
        return embedded.url()
    return normalize_url(env, config.DATABASE_URL_ENV)


def normalize_url(text: str, variable: str) -> str:
    """`text` (a URL from environment variable `variable`) with driver postgresql+psycopg."""
    url = make_url(text)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername != "postgresql+psycopg":
        raise ConfigError(
            f"{variable} must be a postgresql:// URL, got driver {url.drivername!r}"
        )
    return url.render_as_string(hide_password=False)


def libpq_url(sa_url: str | None = None) -> str:
    """The same URL for psycopg.connect (no '+psycopg' driver suffix)."""
    url = make_url(sa_url or database_url())
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


def check_server(conn: psycopg.Connection) -> str:
    """Fail with a clear message unless the server is PostgreSQL 14+ with pgvector >= 0.5.

    Returns the pgvector version that is (or can be) installed.
    """
    server = conn.info.server_version
    if server < 140000:
        raise ConfigError(f"PostgreSQL 14 or newer is required; this server is {server // 10000}")
    row = conn.execute(
        "SELECT installed_version, default_version FROM pg_available_extensions"
        " WHERE name = 'vector'"
    ).fetchone()
    if row is None:
        raise ConfigError(
            "the pgvector extension is not available on this server: install pgvector "
            "(https://github.com/pgvector/pgvector, package postgresql-NN-pgvector) or unset "
            f"{config.DATABASE_URL_ENV} to use the embedded server, which ships it"
        )
    version = row[0] or row[1]
    if _version_tuple(version) < MIN_PGVECTOR:
        raise ConfigError(f"pgvector >= 0.5 is required; this server has {version}")
    return version


_ENGINES: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    engine = _ENGINES.get(url)
    if engine is None:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        with engine.connect() as conn:
            check_server(conn.connection.driver_connection)
        _ENGINES[url] = engine
    return engine


def get_engine(url: str | None = None) -> Engine:
    """A cached engine for `url` (default: the configured server), checked for pgvector once."""
    try:
        return _engine(url or database_url())
    except sa.exc.OperationalError as exc:
        raise ConfigError(f"cannot connect to PostgreSQL: {exc.orig}") from exc


def dispose_engines() -> None:
    """Close every pooled connection and forget cached engines (tests drop databases)."""
    for engine in list(_ENGINES.values()):
        engine.dispose()
    _ENGINES.clear()


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A raw psycopg connection (bulk COPY paths, LISTEN/NOTIFY, benchmarks)."""
    try:
        return psycopg.connect(libpq_url(url), **kwargs)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to PostgreSQL: {exc}") from exc


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """An ORM session in one transaction: committed on success, rolled back on error."""
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


@contextmanager
def scratch_database(prefix: str = "recsys_scratch", migrate_to: str | None = "head"
                     ) -> Iterator[str]:
    """A new database on the configured server, migrated, dropped afterwards (benchmarks).

    Yields its libpq URL. The server's role must be allowed to create databases.
    """
    import os

    from recsys_db import migrate

    base = make_url(database_url())
    name = f"{prefix}_{os.getpid()}"
    admin = libpq_url(base.set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        if migrate_to:
            migrate.upgrade(get_engine(url), migrate_to)
        yield libpq_url(url)
    finally:
        engine = _ENGINES.pop(url, None)
        if engine is not None:
            engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
