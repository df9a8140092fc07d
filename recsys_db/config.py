"""Settings, read from the environment: one place that knows the variable names."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import platformdirs

DATABASE_URL_ENV = "RECSYS_DATABASE_URL"
REPLICA_URL_ENV = "RECSYS_REPLICA_URL"  # read-only queries (recsys_db/replica.py read_url)
HOME_ENV = "RECSYS_HOME"

# Repository root (of a checkout; the demo finds the shared data beside it).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# sql/ and migrations/ sit at the top of the repository; pyproject.toml maps them into the
# package as recsys_db.sql and recsys_db.migrations, in a wheel and an editable install alike.
SQL_DIR = Path(str(files("recsys_db.sql")))
MIGRATIONS_DIR = Path(str(files("recsys_db.migrations")))


def database_url_from_env() -> str | None:
    """The external server's URL when `RECSYS_DATABASE_URL` is set, else None."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    return url or None


def replica_url_from_env() -> str | None:
    """A read replica's URL when `RECSYS_REPLICA_URL` is set, else None."""
    url = os.environ.get(REPLICA_URL_ENV, "").strip()
    return url or None


def recsys_home() -> Path:
    """Per-user data directory (the embedded server's data lives under it)."""
    env = os.environ.get(HOME_ENV, "").strip()
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("recsys-db"))
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


CHECKPOINTS = "checkpoints"  # training checkpoints, under $RECSYS_HOME


def checkpoint_dir(home: Path | None = None) -> Path:
    """Where train-interest keeps its epoch checkpoints (and forget deletes them)."""
    return (home if home is not None else recsys_home()) / CHECKPOINTS


def bench_dir() -> Path:
    """Where the benchmarks keep their last figures (`NAME.json`) for the report."""
    return recsys_home() / "bench"
