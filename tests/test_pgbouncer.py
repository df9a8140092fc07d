"""Applications behind PgBouncer in transaction pooling mode (how most managed PostgreSQL is
reached): 16 client connections share a pool of 4 server connections.

Needs the `pgbouncer` binary (Debian package `pgbouncer`; `.ci/run` installs it): without it the
tests skip. PgBouncer is started per module on a free TCP port in front of the test server.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
from conftest import create_database, drop_database
from sqlalchemy.engine import make_url

from recsys_db import embedded, synth

PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(
    PGBOUNCER is None, reason="pgbouncer not installed (Debian: apt-get install pgbouncer)")

CLIENTS, POOL, SECONDS = 16, 4, 8.0
AUGUST_2036 = datetime(2036, 8, 1, tzinfo=UTC)  # no partition yet: the first writes create it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pgbouncer(server_url: str) -> Iterator[int]:
    """Port of a PgBouncer (pool_mode = transaction, pool of 4) in front of the test server."""
    u = urlparse(server_url)
    host = parse_qs(u.query).get("host", [u.hostname or "localhost"])[0]
    user = u.username or "postgres"
    folder = Path(tempfile.mkdtemp(prefix="recsys-pgbouncer-"))
    folder.chmod(0o755)  # read by the user PgBouncer switches to (below)
    port = _free_port()
    ini = folder / "pgbouncer.ini"
    ini.write_text(f"""[databases]
* = host={host} port={u.port or 5432} user={user}{f' password={u.password}' if u.password else ''}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {POOL}
max_client_conn = 100
logfile =
pidfile =
""")
    ini.chmod(0o644)
    # PgBouncer refuses to run as root; the embedded server's own user may reach its socket.
    run_as = ["-u", embedded._system_user() or "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([PGBOUNCER, *run_as, str(ini)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"pgbouncer did not start:\n{proc.stdout.read()}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _through(url: str, port: int) -> str:
    """`url` (of a test database) through PgBouncer."""
    return make_url(url).set(host="127.0.0.1", port=port, query={}).render_as_string(
        hide_password=False)


@pytest.fixture(scope="module")
def served(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """A database with a small log, an interest model and CF (module-wide)."""
    from recsys_db.cf import train_cf
    from recsys_db.ingest import load_events
    from recsys_db.interest.train import TrainConfig
    from recsys_db.interest.trainer import train_interest

    name = f"recsys_pgbouncer_{os.getpid()}"
    url = create_database(server_url, name, template_db)
    path = tmp_path_factory.mktemp("pgbouncer") / "synth.csv"
    synth.generate(path, users=100, items=300, events=4_000, seed=6)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATABASE_URL", url)
        load_events(path)
        with psycopg.connect(url) as conn:
            train_interest(conn, TrainConfig(dim=8, epochs=1, max_len=20))
            train_cf(conn)
    yield url
    drop_database(server_url, name)


def test_16_clients_through_a_pool_of_4(served: str, pgbouncer: int) -> None:
    """track_event (into a month with no partition yet) and recommend from 16 connections
    through a transaction pool of 4, for a bounded time: zero errors, every event stored."""
    url = _through(served, pgbouncer)
    barrier = threading.Barrier(CLIENTS)
    latencies: dict[str, list[float]] = {"track_event": [], "recommend": []}
    errors: list[BaseException] = []
    stored = [0] * CLIENTS
    lock = threading.Lock()

    def client(i: int) -> None:
        rng = random.Random(i)
        mine: dict[str, list[float]] = {"track_event": [], "recommend": []}
        try:
            # prepare_threshold=None: no server-side prepared statements, which a transaction
            # pooler would hand to another client's server connection.
            with psycopg.connect(url, autocommit=True, prepare_threshold=None) as c:
                barrier.wait(timeout=30)
                end = time.monotonic() + SECONDS
                n = 0
                while time.monotonic() < end:
                    t0 = time.perf_counter()
                    if n % 2 == 0:
                        ts = AUGUST_2036 + timedelta(seconds=n * CLIENTS + i)
                        event_id = c.execute(
                            "SELECT recsys.track_event(%s, %s, 'pv', %s)",
                            (f"pgb-user-{i}", f"{rng.randrange(1, 300)}", ts)).fetchone()[0]
                        stored[i] += event_id is not None
                        kind = "track_event"
                    else:
                        rows = c.execute("SELECT * FROM recsys.recommend(%s, 10)",
                                         (str(rng.randrange(1, 120)),)).fetchall()
                        assert len(rows) == 10
                        kind = "recommend"
                    mine[kind].append((time.perf_counter() - t0) * 1000)
                    n += 1
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
            barrier.abort()
        with lock:
            for kind, values in mine.items():
                latencies[kind].extend(values)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    figures = {kind: _figures(values) for kind, values in latencies.items()}
    print(f"\npgbouncer transaction pool of {POOL}, {CLIENTS} clients, {SECONDS:.0f} s: "
          f"{len(errors)} errors; " + "; ".join(
              f"{kind} {f['calls']} calls, p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms"
              for kind, f in figures.items()))
    assert errors == []
    assert all(f["calls"] >= CLIENTS for f in figures.values())
    with psycopg.connect(served) as c:
        in_month = c.execute("SELECT count(*) FROM recsys.events_2036m08").fetchone()[0]
    assert in_month == sum(stored) == figures["track_event"]["calls"]


def _figures(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"calls": len(values), "p50": float("nan"), "p99": float("nan")}
    cuts = statistics.quantiles(values, n=100)
    return {"calls": len(values), "p50": statistics.median(values), "p99": cuts[98]}


def test_doctor_warns_when_the_worker_url_goes_through_a_transaction_pooler(
        served: str, pgbouncer: int) -> None:
    from recsys_db.doctor import run_checks

    pooled = {c.name: c for c in run_checks(_through(served, pgbouncer))}["pooler"]
    assert pooled.status == "warn"
    assert f"127.0.0.1:{pgbouncer} is PgBouncer (transaction pooling)" in pooled.detail
    assert "LISTEN" in pooled.detail and "server itself" in pooled.fix
    direct = {c.name: c for c in run_checks(served)}["pooler"]
    assert direct.status == "ok" and "no PgBouncer there" in direct.detail
