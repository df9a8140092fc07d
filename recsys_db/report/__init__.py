"""`recsys-db report`: one self-contained HTML file on data health, model quality, interest
migration and serving.

`data` reads (SQL in `sql/report.sql`), `charts` draws PNGs, `html` assembles; `sections`
puts the three together. Every section says what to run when it has nothing to
show yet. All reads happen in one read-only snapshot; the file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.pq import TransactionStatus

from recsys_db.config import bench_dir as default_bench_dir
from recsys_db.report import data
from recsys_db.report import html as h
from recsys_db.report.sections import (
    SECTIONS,
    data_health,
    interest_migration,
    model_quality,
    serving,
)

__all__ = ["Progress", "ReportSummary", "write_report"]

Progress = Callable[[str, int, int], None]  # (step label, steps done, steps total)
IMG_MARK = '<img src="data:image/png;base64,'


@dataclass
class ReportSummary:
    path: Path
    sections: list[str]
    images: int
    users: list[str]


def write_report(conn: psycopg.Connection, out: Path, users: list[str] | None = None,
                 bench_dir: Path | None = None, progress: Progress | None = None
                 ) -> ReportSummary:
    """Write the report to `out`. `users`: whose interest timelines to chart (default: the 3
    most active; an unknown id raises ValueError). `bench_dir`: where `recommend.json` of the
    last benchmark run is (default: `$RECSYS_HOME/bench`)."""
    out = Path(out)
    bench_dir = bench_dir if bench_dir is not None else default_bench_dir()
    with _snapshot(conn):
        chosen = data.resolve_users(conn, users)
        steps = ["data health", "model quality", "interest migration",
                 *(f"user {u}" for u in chosen), "serving", "write"]
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(steps[done - 1], done, len(steps))

        health = data_health(conn)
        step()
        quality = model_quality(conn)
        step()
        migration = interest_migration(conn, chosen, health.totals["events"] > 0, step)
        served = serving(conn, bench_dir)
        step()
    database = h.fmt(conn.info.dbname)
    meta = (f"database {database} · generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} · "
            "days are UTC calendar days")
    document = h.page("recsys-db report", meta, [
        ("data-health", SECTIONS["data-health"], health.markup),
        ("model-quality", SECTIONS["model-quality"], quality),
        ("interest-migration", SECTIONS["interest-migration"], migration),
        ("serving", SECTIONS["serving"], served)])
    _write_atomic(out, document)
    step()
    return ReportSummary(out, list(SECTIONS), document.count(IMG_MARK), chosen)


@contextlib.contextmanager
def _snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """One read-only, repeatable-read transaction unless the caller is already inside one."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _write_atomic(out: Path, document: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; a report is for reading
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(document)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


