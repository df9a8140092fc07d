"""Test fixtures: a real PostgreSQL with pgvector, one migrated template, one database per test.

With RECSYS_DATABASE_URL set, that server is used (its role must be allowed to create
databases); otherwise an embedded server is started once for the test session in a temporary
RECSYS_HOME and stopped at the end. Each test that asks for `db_url` gets a fresh database cloned
from a template migrated to head, and RECSYS_DATABASE_URL pointing at it.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "taobao_userbehavior"
TAOBAO_EVENTS = DATA_DIR / "events.csv"
_EXTERNAL = os.environ.get("RECSYS_DATABASE_URL")
_counter = itertools.count()


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """(Re)create database `name` (empty, or a clone of `template`); returns its libpq URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template
                                                     else ""))
    return _with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name`, closing this process's pooled connections to it first."""
    from recsys_db import db

    db.dispose_engines()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """libpq URL of the test server's maintenance database."""
    if _EXTERNAL:
        yield _with_database(_EXTERNAL.replace("+psycopg", ""), "postgres")
        return
    home = tempfile.mkdtemp(prefix="recsys-test-")
    os.environ["RECSYS_HOME"] = home
    from recsys_db import embedded

    embedded.start()
    try:
        yield embedded.url("postgresql").replace(f"/{embedded.DATABASE_NAME}?", "/postgres?")
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    """Name of a database migrated to head, cloned by `db_url`."""
    from recsys_db import migrate
    from recsys_db.db import get_engine

    name = f"recsys_tmpl_{os.getpid()}"
    url = create_database(server_url, name).replace("postgresql:", "postgresql+psycopg:")
    engine = get_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    drop_database(server_url, name)


@pytest.fixture
def db_url(server_url: str, template_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated database for this test; RECSYS_DATABASE_URL points at it."""
    name = f"recsys_test_{os.getpid()}_{next(_counter)}"
    url = create_database(server_url, name, template_db)
    monkeypatch.setenv("RECSYS_DATABASE_URL", url)
    yield url
    drop_database(server_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit psycopg connection to this test's database."""
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture
def taobao_events() -> Path:
    if not TAOBAO_EVENTS.is_file():
        pytest.skip(f"Taobao sample not found at {TAOBAO_EVENTS} (expected ../shared/data next "
                    "to the project root)")
    return TAOBAO_EVENTS


@pytest.fixture
def synthetic(db_url: str, tmp_path: Path) -> Path:
    """A small synthetic log (120 users, 400 items, 6k events) loaded; returns its CSV path."""
    from recsys_db import synth
    from recsys_db.ingest import load_events

    path = tmp_path / "synth.csv"
    synth.generate(path, users=120, items=400, events=6_000, seed=5)
    load_events(path)
    return path


@pytest.fixture
def trained(db_url: str, tmp_path: Path) -> str:
    """A small synthetic log (200 users, 600 items, 12k events) with an active interest model
    (LSTM, dim 16, 2 epochs) and CF version; returns the database URL."""
    from recsys_db import synth
    from recsys_db.cf import train_cf
    from recsys_db.ingest import load_events
    from recsys_db.interest.train import TrainConfig
    from recsys_db.interest.trainer import train_interest

    path = tmp_path / "synth.csv"
    synth.generate(path, users=200, items=600, events=12_000, seed=4)
    load_events(path)
    with psycopg.connect(db_url) as conn:
        train_interest(conn, TrainConfig(dim=16, epochs=2, max_len=20))
        train_cf(conn)
    return db_url
