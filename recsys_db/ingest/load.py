"""`load_events`: the Python door for bulk event loads.

All rows go by COPY into a temporary staging table, the SQL rules judge them set-based
(`recsys.check_staged`), and one statement per table stores them (`recsys.load_checked`) - all
in one transaction. Default `on_error="reject"`: any bad row rejects the whole load and the
database is unchanged. `on_error="quarantine"`: good rows load, bad rows go to
`recsys.rejected_events` with their reason. Rows of forgotten users (recsys.forget_user) are
skipped before judging, bad or good, and counted (`LoadResult.forgotten`).

A large input goes through in chunks of about `CHUNK_ROWS` rows - staged, judged and stored
one after the other, still in the one transaction - so the staging tables stay within the
session's `temp_buffers` (in memory) however large the input is, and each chunk's joins and
ANALYZE stay the size of a chunk. In reject mode a bad row in any chunk rolls back the chunks
before it too. An item's category is its most frequent one in the first chunk that names it
(as across separate loads). Files and DataFrames are parsed by a thread up to about a chunk
ahead of the COPY (read_ahead.py), so parsing overlaps the server's work on the chunk before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from recsys_db import db
from recsys_db.errors import IngestError
from recsys_db.ingest import readers
from recsys_db.ingest.read_ahead import read_ahead
from recsys_db.sqlfiles import queries

ON_ERROR = ("reject", "quarantine")
MAX_REPORTED = 10
CHUNK_ROWS = 1_000_000  # rows staged at a time (about 250 MB of temp table with its checks)
# batches a file's or DataFrame's reader thread parses ahead of the COPY while the server works
# on the chunk before: a chunk and a bit for DataFrames (200k rows a batch), about 1.5 chunks
# for files (an 8 MB block, about 250k rows, a batch): some 50 MB of text at most
READ_AHEAD_BATCHES = CHUNK_ROWS // readers.ROWS_PER_BATCH + 1
Progress = Callable[[int, int | None], None]  # (done, total) in bytes for files, rows otherwise


@dataclass(frozen=True)
class LoadResult:
    source: str
    rows_read: int
    loaded: int
    duplicates: int
    rejected: int
    new_users: int
    new_items: int
    new_categories: int
    seconds: float
    forgotten: int = 0  # rows of forgotten users (recsys.forget_user), skipped

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_events(
    source: str | Path | Iterable[Any] | Any,
    *,
    format: str = "taobao",  # noqa: A002 - the CLI's --format
    on_error: str = "reject",
    mapping: Mapping[str, str] | None = None,
    default_behavior: str = "pv",
    source_name: str | None = None,
    progress: Progress | None = None,
    url: str | None = None,
) -> LoadResult:
    """Load events from a file path, a pandas DataFrame or an iterable of rows.

    Rows of an iterable are tuples `(user_id, item_id, category_id, behavior, ts)` (or without
    category: 4 fields) or mappings with those keys; `ts` is unix seconds, ISO 8601 text or a
    datetime. Raises `IngestError` naming the line/row and the problem.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    batches, total, name = _batches(source, format, mapping, default_behavior)
    name = source_name or name
    started = time.perf_counter()
    sql = queries("ingest.sql")
    rows = forgotten = 0
    stored = [0] * 6  # loaded, duplicates, rejected, new users, items, categories
    with closing(batches) as batches, db.connect(url) as conn:  # readers are generators
        try:
            conn.execute(sql["temp_buffers"])
            conn.execute(sql["stage"])
            more = True
            while more:
                staged, more = _stage(conn, batches, sql, on_error, name, total, progress)
                rows += staged
                good, bad, skipped = conn.execute(sql["check"]).fetchone()
                forgotten += int(skipped)
                if bad and on_error == "reject":
                    problems = conn.execute(sql["problems"], {"limit": MAX_REPORTED}).fetchall()
                    raise _rejected(name, bad, [(int(n), str(r)) for n, r in problems],
                                    counted_so_far=more)
                result = conn.execute(sql["load"], {"source": name}).fetchone()
                stored = [a + int(b) for a, b in zip(stored, result, strict=True)]
                conn.execute(sql["clear_stage"])
        except psycopg.errors.DataError as exc:
            raise IngestError(f"{name}: {exc.diag.message_primary}") from exc
        conn.commit()
    loaded, duplicates, rejected, users, items, categories = stored
    return LoadResult(name, rows, loaded, duplicates, rejected, users, items, categories,
                      round(time.perf_counter() - started, 3), forgotten)


def _batches(source: Any, fmt: str, mapping: Mapping[str, str] | None, default_behavior: str
             ) -> tuple[Iterator[readers.Batch], int | None, str]:
    """(batches, total for progress, source name). Files and DataFrames are parsed in a thread
    (read_ahead); a caller's own iterable (a database cursor, a generator tied to its thread) is
    read where it was given."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise IngestError(f"no such file: {path}")
        batches = readers.read_delimited(path, fmt, mapping, default_behavior)
        return read_ahead(batches, READ_AHEAD_BATCHES), path.stat().st_size, path.name
    if hasattr(source, "itertuples") and hasattr(source, "columns"):
        batches = readers.read_dataframe(source, mapping, default_behavior)
        return read_ahead(batches, READ_AHEAD_BATCHES), len(source), "dataframe"
    total = len(source) if hasattr(source, "__len__") else None
    return readers.read_rows(source, default_behavior), total, "rows"


def _stage(conn: psycopg.Connection, batches: Iterator[readers.Batch], sql: dict[str, str],
           on_error: str, name: str, total: int | None, progress: Progress | None
           ) -> tuple[int, bool]:
    """COPY batches into the staging table until it holds CHUNK_ROWS rows or the input ends;
    returns (rows staged, whether input may remain). Fails fast on a structural error in reject
    mode."""
    rows = 0
    try:
        with conn.cursor().copy(sql["copy"]) as copy:
            for batch in batches:
                if batch.problems and on_error == "reject":
                    raise _rejected(name, len(batch.problems), batch.problems[:MAX_REPORTED],
                                    counted_so_far=True)
                copy.write(batch.text)
                rows += batch.rows
                if progress is not None:
                    progress(batch.progress, total)
                if rows >= CHUNK_ROWS:
                    return rows, True
    except ValueError as exc:  # a reader could not understand the input's layout
        raise IngestError(f"{name}: {exc}") from exc
    return rows, False


def _rejected(name: str, bad: int, problems: list[tuple[int, str]],
              counted_so_far: bool = False) -> IngestError:
    listed = "\n".join(f"  line {line}: {reason}" for line, reason in problems)
    count = f"at least {bad}" if counted_so_far else str(bad)
    first_line, first_reason = problems[0]
    message = (f"{name}: line {first_line}: {first_reason} ({count} bad row(s); nothing was "
               f"loaded - fix them or use on_error='quarantine')\n{listed}")
    return IngestError(message, problems)
