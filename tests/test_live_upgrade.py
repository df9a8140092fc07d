"""Serving never stops: `recsys.recommend` called in a loop from several connections while the
schema is upgraded from the previous release's head, while a model version is activated, and
with a caller's tiny `statement_timeout` (the only errors then are query cancellations).

Each client is a thread with its own psycopg connection (autocommit, one call per transaction,
as an application or a transaction pooler runs them); a call counts as failed on any exception.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from conftest import create_database, drop_database
from psycopg import errors as pgerrors
from psycopg.pq import TransactionStatus
from release import release_functions, restore_release
from sqlalchemy import create_engine

from recsys_db import migrate, registry, synth

PREVIOUS_RELEASE = "0007"  # the head of the release before this one
CLIENTS = 4


@dataclass
class Load:
    """Calls, failures and latencies of the clients, with the time of each call."""
    calls: list[tuple[str, float, float, float]] = field(default_factory=list)
    # (function, start, end, ms) of every call, failed or not
    errors: list[tuple[float, str, BaseException]] = field(default_factory=list)
    # (end, function, error) of every failed call
    empty: int = 0  # recommend calls that returned no rows
    lock: threading.Lock = field(default_factory=threading.Lock)

    def figures(self) -> str:
        parts = []
        for kind in sorted({c[0] for c in self.calls}):
            ms = [c[3] for c in self.calls if c[0] == kind]
            p99 = statistics.quantiles(ms, n=100)[98] if len(ms) > 1 else float("nan")
            parts.append(f"{kind} {len(ms)} calls, p50 {statistics.median(ms):.1f} ms, "
                         f"p99 {p99:.1f} ms")
        return f"{len(self.errors)} errors; " + "; ".join(parts)

    def errors_between(self, start: float, end: float) -> list[BaseException]:
        return [exc for t, _, exc in self.errors if start <= t < end]

    def during(self, start: float, end: float) -> int:
        """Calls that were in flight at some moment of [start, end]."""
        return sum(1 for _, s, e, _ in self.calls if s <= end and e >= start)


def _recommend(conn: psycopg.Connection, user: str) -> bool:
    """One recommend call; True when it returned rows."""
    return bool(conn.execute("SELECT * FROM recsys.recommend(%s, 10)", (user,)).fetchall())


def _interest_drift(conn: psycopg.Connection, user: str) -> bool:
    """One interest_drift call, naming the columns it reads: 0009 adds a column to its result,
    and a server-side prepared `SELECT *` (psycopg prepares a query from its 5th run) would
    then fail with 'cached plan must not change result type' until prepared again."""
    conn.execute("SELECT drift, gaining, losing FROM recsys.interest_drift(%s)",
                 (user,)).fetchall()
    return True


LOCAL_TIMEOUT_MS, SESSION_TIMEOUT_MS = 25, 3


def _recommend_set_local(conn: psycopg.Connection, user: str) -> bool:
    """recommend with a statement_timeout for its transaction only (the way to set one behind a
    transaction pooler)."""
    with conn.transaction():
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{LOCAL_TIMEOUT_MS}ms",))
        return _recommend(conn, user)


def _serve(url: str, load: Load, stop: threading.Event, users: list[str],
           calls: tuple[Callable[[psycopg.Connection, str], bool], ...],
           setup: Callable[[psycopg.Connection], None] | None) -> list[threading.Thread]:
    """Start CLIENTS threads, each on its own connection, making `calls` in turn (one
    statement per transaction) until `stop` is set; returns once every client has made its
    first call."""
    started = threading.Barrier(CLIENTS + 1)

    def client(i: int) -> None:
        rng = random.Random(i)
        mine: list[tuple[str, float, float, float]] = []
        errors: list[tuple[float, str, BaseException]] = []
        empty = n = 0
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                if setup is not None:
                    setup(conn)
                while n == 0 or not stop.is_set():
                    call = calls[n % len(calls)]
                    kind = call.__name__.strip("_")
                    t0 = time.monotonic()
                    try:
                        empty += not call(conn, rng.choice(users))
                    except psycopg.Error as exc:
                        errors.append((time.monotonic(), kind, exc))
                        # a cancellation that lands while psycopg ends the transaction block
                        # can leave it open and failed: end it, as an application would
                        if conn.info.transaction_status == TransactionStatus.INERROR:
                            conn.rollback()
                    t1 = time.monotonic()
                    mine.append((kind, t0, t1, (t1 - t0) * 1000))
                    if n == 0:
                        started.wait(timeout=60)
                    n += 1
        except BaseException as exc:  # noqa: BLE001 - a client that died fails the test
            errors.append((time.monotonic(), "client", exc))
            started.abort()
        with load.lock:
            load.calls.extend(mine)
            load.errors.extend(errors)
            load.empty += empty

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    started.wait(timeout=60)
    return threads


def _under_load(url: str, users: list[str], actions: list[Callable[[], None]], *,
                calls: tuple[Callable[[psycopg.Connection, str], bool], ...] = (_recommend,),
                pause: float = 0.5, setup: Callable[[psycopg.Connection], None] | None = None
                ) -> tuple[Load, list[tuple[float, float]]]:
    """Clients call for `pause` s, then each action runs in turn, `pause` s apart, and the
    clients go on `pause` s after the last. Returns the load and each action's (start, end)."""
    load, stop = Load(), threading.Event()
    spans: list[tuple[float, float]] = []
    threads = _serve(url, load, stop, users, calls, setup)
    try:
        for action in actions:
            time.sleep(pause)
            t0 = time.monotonic()
            action()
            spans.append((t0, time.monotonic()))
        time.sleep(pause)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    return load, spans


def _log(path: Path, url: str) -> list[str]:
    """A small synthetic log loaded into `url`; returns user ids to ask for (known and not)."""
    from recsys_db.ingest import load_events

    synth.generate(path, users=60, items=200, events=2_500, seed=12)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATABASE_URL", url)
        load_events(path)
    with psycopg.connect(url) as conn:
        known = [r[0] for r in conn.execute("SELECT user_id FROM recsys.users ORDER BY 1")]
    return known[:40] + ["no-such-user-1", "no-such-user-2"]


def _train(url: str, dim: int = 8) -> None:
    from recsys_db.cf import train_cf
    from recsys_db.interest.train import TrainConfig
    from recsys_db.interest.trainer import train_interest

    with psycopg.connect(url) as conn:
        train_interest(conn, TrainConfig(dim=dim, epochs=1, max_len=20))
        train_cf(conn)


@pytest.fixture
def fresh_db(server_url: str) -> Iterator[tuple[str, object]]:
    """An empty database and a SQLAlchemy engine on it (for migrate)."""
    name = f"recsys_live_{os.getpid()}"
    url = create_database(server_url, name)
    engine = create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
    try:
        yield url, engine
    finally:
        engine.dispose()
        drop_database(server_url, name)


@pytest.fixture
def previous_release(server_url: str) -> Iterator[str]:
    """A fresh install of the previous release's schema."""
    name = f"recsys_live_prev_{os.getpid()}"
    url = create_database(server_url, name)
    engine = create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
    try:
        restore_release(url)  # from a pg_dump of a database release 0007 migrated
        yield url
    finally:
        engine.dispose()
        drop_database(server_url, name)


def _functions(url: str) -> list[tuple]:
    """Signature, body and settings of every function in schema recsys, but the generated
    serving functions (they name the active versions)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT p.oid::regprocedure::text, md5(p.prosrc), p.proconfig FROM pg_proc p "
            "WHERE p.pronamespace = 'recsys'::regnamespace AND p.proname NOT IN "
            "('serving_candidates', 'serving_score') AND p.proname !~ '^ranker_score_v' "
            "ORDER BY 1").fetchall()


def test_upgrade_from_previous_release_while_serving_fails_no_call(fresh_db, previous_release,
                                                                   tmp_path):
    """0007 -> head while 4 clients call recommend (and interest_drift, which 0009 drops and
    re-creates with a new column): zero failed calls, calls were in flight during every
    upgrade, and afterwards head's functions serve. Three rounds (downgraded in between, under
    the same load), since a race would show only now and then."""
    url, engine = fresh_db
    # A database as the previous release left it, with models to serve. The current jobs
    # write columns that exist only from 0009 on, so the models are trained at head and the
    # database then given release 0007's functions (from tests/fixtures/release_0007.dump:
    # downgrades keep the current bodies) and columns: the same functions as a database that
    # release left (checked below), serving data of the shape 0007 reads.
    migrate.upgrade(engine)
    users = _log(tmp_path / "synth.csv", url)
    _train(url)
    release_functions(url)
    assert _functions(url) == _functions(previous_release), "back to 0007 != release 0007"
    with psycopg.connect(url) as conn:  # 0007's serving works on this data
        assert len(conn.execute("SELECT * FROM recsys.recommend(%s, 10)",
                                (users[0],)).fetchall()) == 10

    def upgrade() -> None:
        assert migrate.current_revision(engine) == PREVIOUS_RELEASE
        migrate.upgrade(engine)

    def downgrade() -> None:  # back to release 0007 (not through the chain: see above)
        release_functions(url)

    seen: set[str] = set()

    def _revision(conn: psycopg.Connection, user: str) -> bool:
        seen.add(conn.execute("SELECT version_num FROM public.recsys_alembic_version"
                              ).fetchone()[0])
        return True

    load, spans = _under_load(url, users, [upgrade, downgrade] * 2 + [upgrade],
                              calls=(_recommend, _interest_drift, _revision))
    # one transaction for the whole chain: no client ever saw a revision in between
    assert seen == {PREVIOUS_RELEASE, migrate.head_revision()}, seen
    # a call belongs to the last migration that began before it ended
    windows = [(t0, nxt) for (t0, _), nxt in zip(spans, [s for s, _ in spans[1:]] + [1e18],
                                                 strict=True)]
    upgrade_errors = [e for w in windows[::2] for e in load.errors_between(*w)]
    downgrade_errors = [e for w in windows[1::2] for e in load.errors_between(*w)]
    in_flight = [load.during(t0, t1) for t0, t1 in spans[::2]]
    print(f"\n{len(in_flight)} upgrades {PREVIOUS_RELEASE} -> head (longest "
          f"{max(t1 - t0 for t0, t1 in spans[::2]):.2f} s), {len(spans) // 2} downgrades "
          f"between them, under {CLIENTS} clients: {load.figures()}; calls in flight during the "
          f"upgrades: {in_flight}; errors: {len(upgrade_errors)} after upgrades, "
          f"{len(downgrade_errors)} after downgrades "
          f"{sorted({str(e).splitlines()[0] for e in downgrade_errors})}")
    # Only the upgrades are promised here. A downgrade under load fails the few calls that
    # looked a function up before it committed and parse its body after: 0009's bodies name
    # columns its downgrade drops (`column s.p_migrate does not exist`).
    assert upgrade_errors == [], upgrade_errors[:3]
    assert load.empty == 0
    assert min(in_flight) >= CLIENTS
    assert migrate.current_revision(engine) == migrate.head_revision()
    with psycopg.connect(url) as conn:  # head's functions serve
        assert len(conn.execute("SELECT * FROM recsys.interest_drift(%s)",
                                (users[0],)).fetchone()) == 4  # with p_migrate


def test_activating_versions_while_serving_fails_no_call(db_url, tmp_path):
    """Two interest versions of different dimensions and two CF versions, activated in turn
    (recsys_db.registry.activate, what `recsys-db models activate` runs) while 4 clients call
    recommend: zero failed calls, and each switch happened with calls in flight."""
    users = _log(tmp_path / "synth.csv", db_url)
    _train(db_url, dim=8)
    _train(db_url, dim=12)
    with psycopg.connect(db_url, autocommit=True) as conn:
        versions = {kind: [r[0] for r in conn.execute(
            "SELECT version_id FROM recsys.model_versions WHERE kind = %s ORDER BY 1",
            (kind,))] for kind in ("interest", "cf")}
    assert all(len(v) == 2 for v in versions.values()), versions
    # interest flips 16 times (a race shows only now and then), CF 8 times
    order = [("interest", 0), ("interest", 1), ("interest", 0), ("cf", 0), ("interest", 1),
             ("cf", 1)] * 4

    def switch(kind: str, which: int) -> Callable[[], None]:
        def run() -> None:
            with psycopg.connect(db_url, autocommit=True) as conn:
                registry.activate(conn, versions[kind][which], reason="test_live_upgrade")
                assert registry.active_version(conn, kind) == versions[kind][which]
        return run

    load, spans = _under_load(db_url, users, [switch(k, w) for k, w in order], pause=0.15)
    in_flight = [load.during(t0, t1) for t0, t1 in spans]
    print(f"\n{len(spans)} activations (longest {max(t1 - t0 for t0, t1 in spans):.2f} s) under "
          f"{CLIENTS} clients: {load.figures()}; calls in flight during them: {in_flight}")
    assert [e for _, _, e in load.errors] == [], load.errors[:3]
    assert load.empty == 0
    assert sum(in_flight) >= len(spans)


def test_caller_statement_timeout_is_respected_under_load(db_url, tmp_path):
    """4 clients with a tiny statement_timeout (3 ms for the session, 25 ms by SET LOCAL for
    every other call): the only errors are query cancellations (SQLSTATE 57014), none of the
    functions overrides the caller's setting, and the connection serves the next call."""
    users = _log(tmp_path / "synth.csv", db_url)
    _train(db_url)
    with psycopg.connect(db_url) as conn:
        overriding = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p, unnest(p.proconfig) c "
            "WHERE p.pronamespace = 'recsys'::regnamespace AND (c LIKE 'statement_timeout=%' "
            "OR c LIKE 'lock_timeout=%' OR c LIKE 'idle_in_transaction%')").fetchall()
    assert overriding == []

    def setup(conn: psycopg.Connection) -> None:
        conn.execute(f"SET statement_timeout = '{SESSION_TIMEOUT_MS}ms'")

    load, _ = _under_load(db_url, users, [lambda: None], pause=2.0, setup=setup,
                          calls=(_recommend, _recommend_set_local))
    errors = [e for _, _, e in load.errors]
    cancelled = [e for e in errors if isinstance(e, pgerrors.QueryCanceled)]
    by_kind = {k: sum(1 for _, kind, _ in load.errors if kind == k)
               for k in ("recommend", "recommend_set_local")}
    slowest = {kind: max(c[3] for c in load.calls if c[0] == kind)
               for kind in ("recommend", "recommend_set_local")}
    print(f"\nstatement_timeout {SESSION_TIMEOUT_MS} ms (session) / {LOCAL_TIMEOUT_MS} ms "
          f"(SET LOCAL), {CLIENTS} clients: {load.figures()}; cancelled: {by_kind}, "
          f"{len(errors) - len(cancelled)} other errors; "
          f"slowest call: " + ", ".join(f"{k} {v:.0f} ms" for k, v in slowest.items()))
    assert errors == cancelled, [e for e in errors if e not in cancelled][:3]
    assert all(e.sqlstate == "57014" for e in cancelled)
    assert cancelled, "no call ran into the timeout: make it tinier"
    assert len(load.calls) - len(errors) >= CLIENTS  # connections go on serving after one
    # cancelled within the timeout plus scheduling on busy cores, never left to run on
    assert slowest["recommend"] < SESSION_TIMEOUT_MS + 1000
    assert slowest["recommend_set_local"] < LOCAL_TIMEOUT_MS + 1000
