"""`load_items`: the catalog door (item_id, category_id, active and any attribute columns).

A CSV file (with a header) or a pandas DataFrame: `item_id` is required; `category_id` and
`active` (true/false, yes/no, 1/0, t/f) are optional; every other column becomes a key of
`recsys.items.attributes` (jsonb). In a CSV, values that read as numbers become JSON numbers
and the rest strings; empty cells are left out. Same rules as the events doors: rows go by COPY
into a temporary staging table, SQL judges them (sql/items.sql), and one transaction stores them
- or, if any row is bad, nothing is written and the error names the lines and the problems.
A listed item's attributes are replaced; `category_id` and `active`, when given, are set; items
not listed are left alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from recsys_db import db
from recsys_db.errors import IngestError
from recsys_db.ingest.readers import staged_line
from recsys_db.sqlfiles import queries

KNOWN = ("item_id", "category_id", "active")
MAX_REPORTED = 10


@dataclass(frozen=True)
class ItemsResult:
    source: str
    rows_read: int
    updated_items: int
    new_items: int
    new_categories: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_items(source: str | Path | Any, *, source_name: str | None = None,
               url: str | None = None) -> ItemsResult:
    """Load catalog rows from a CSV path or a pandas DataFrame (see the module docstring).

    Raises `IngestError` naming the lines and problems; then nothing was written."""
    started = time.perf_counter()
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise IngestError(f"no such file: {path}")
        name, rows = source_name or path.name, _csv_rows(path)
    elif hasattr(source, "itertuples") and hasattr(source, "columns"):
        name, rows = source_name or "dataframe", _frame_rows(source)
    else:
        raise TypeError("load_items takes a CSV path or a pandas DataFrame")
    sql = queries("items.sql")
    with db.connect(url) as conn:
        try:
            n = _stage(conn, sql, name, rows)
            conn.execute(sql["judge"])
            conn.execute(sql["repeated"])
            bad = conn.execute(sql["check"]).fetchone()[0]
            if bad:
                problems = conn.execute(sql["problems"], {"limit": MAX_REPORTED}).fetchall()
                raise _rejected(name, int(bad), [(int(line), str(p)) for line, p in problems])
            updated, new_items, new_categories = conn.execute(sql["load"]).fetchone()
        except psycopg.errors.DataError as exc:
            raise IngestError(f"{name}: {exc.diag.message_primary}") from exc
        conn.commit()
    return ItemsResult(name, n, int(updated), int(new_items), int(new_categories),
                       round(time.perf_counter() - started, 3))


Row = tuple[int, str | None, str | None, str | None, dict[str, Any] | None, str | None]


def _stage(conn: psycopg.Connection, sql: dict[str, str], name: str,
           rows: Iterator[Row]) -> int:
    conn.execute(sql["stage"])
    n = 0
    try:
        with conn.cursor().copy(sql["copy"]) as copy:
            for line_no, item, category, active, attributes, problem in rows:
                attrs = None if attributes is None else json.dumps(attributes, ensure_ascii=False)
                copy.write(staged_line(line_no, (item, category, active, attrs), problem))
                n += 1
    except ValueError as exc:  # the input's layout (no item_id column, not a CSV)
        raise IngestError(f"{name}: {exc}") from exc
    if n == 0:
        raise IngestError(f"{name}: no rows")
    return n


def _csv_value(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return int(text) if text.lstrip("+-").isdigit() else number


def _csv_rows(path: Path) -> Iterator[Row]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path.name}: invalid UTF-8 at byte {exc.start + 1} (nothing was "
                          "loaded)") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    if "item_id" not in header:
        raise IngestError(f"{path.name}: line 1: the header needs an item_id column, got "
                          f"{header[:10]} (nothing was loaded)")
    if len(set(header)) != len(header) or "" in header:
        raise IngestError(f"{path.name}: line 1: column names must be present and distinct, got "
                          f"{header[:10]} (nothing was loaded)")
    for fields in reader:
        line_no = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            yield (line_no, None, None, None, None,
                   f"expected {len(header)} columns, found {len(fields)}")
            continue
        if any("\x00" in f for f in fields):
            yield line_no, None, None, None, None, "NUL byte in line"
            continue
        row = dict(zip(header, fields, strict=True))
        attributes = {k: _csv_value(v.strip()) for k, v in row.items()
                      if k not in KNOWN and v.strip() != ""}
        yield (line_no, row["item_id"], row.get("category_id"), row.get("active"),
               attributes, None)


def _frame_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars -> Python
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _frame_rows(frame: Any) -> Iterator[Row]:
    columns = [str(c) for c in frame.columns]
    if "item_id" not in columns:
        raise IngestError(f"DataFrame lacks column item_id; has {columns[:10]} (nothing was "
                          "loaded)")
    for n, record in enumerate(frame.itertuples(index=False, name=None), start=1):
        row = {c: _frame_value(v) for c, v in zip(columns, record, strict=True)}

        def text(key: str, row: dict[str, Any] = row) -> str | None:
            value = row.get(key)
            return None if value is None else str(value)

        attributes = {k: v for k, v in row.items() if k not in KNOWN and v is not None}
        yield n, text("item_id"), text("category_id"), text("active"), attributes, None


def _rejected(name: str, bad: int, problems: list[tuple[int, str]]) -> IngestError:
    listed = "\n".join(f"  line {line}: {reason}" for line, reason in problems)
    first_line, first_reason = problems[0]
    return IngestError(f"{name}: line {first_line}: {first_reason} ({bad} bad row(s); nothing "
                       f"was loaded)\n{listed}", problems)
