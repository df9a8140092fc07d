"""Readers turn input (files of several formats, DataFrames, row iterables) into staged rows.

A staged row is one line of PostgreSQL COPY text format with the columns of
`pg_temp.recsys_stage`: line_no, user_id, item_id, category_id, behavior, ts, problem, raw.
Readers only parse: they catch what can't reach SQL (invalid UTF-8, wrong column count, NUL
bytes) and put the reason in `problem`. Every other rule is applied in SQL (sql/0001_events.sql),
the same rules `recsys.track_event` applies.

Each reader yields `Batch`es so memory stays bounded however large the input is.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

FIELDS = ("user_id", "item_id", "category_id", "behavior", "ts")
FORMATS = ("taobao", "movielens", "csv")
BLOCK_BYTES = 8 << 20
ROWS_PER_BATCH = 200_000
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass
class Batch:
    """COPY text for some rows, how many rows it holds, and progress so far."""

    text: str
    rows: int
    progress: int  # bytes read for files, rows read for iterables
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason) found here


def _copy_value(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_ESCAPES)


def staged_line(line_no: int, values: Sequence[str | None], problem: str | None = None,
                raw: str | None = None) -> str:
    cols = [str(line_no), *(_copy_value(v) for v in values), _copy_value(problem), _copy_value(raw)]
    return "\t".join(cols) + "\n"


def bad_line(line_no: int, problem: str, raw: str) -> str:
    return staged_line(line_no, (None,) * len(FIELDS), problem, raw.replace("\x00", "\\0"))


# --------------------------------------------------------------------------- files


def _iter_line_blocks(path: Path) -> Iterator[tuple[int, list[bytes], int]]:
    """(number of the first line, raw lines, bytes read so far) in blocks of about 8 MB."""
    line_no = 1
    done = 0
    carry = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(BLOCK_BYTES)
            done += len(chunk)
            data = carry + chunk
            if not chunk:
                if data:
                    yield line_no, [data], done
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            lines = data[:cut].split(b"\n")
            yield line_no, lines, done
            line_no += len(lines)


def _decode(line: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason) for one raw line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start + 1}"
    if "\x00" in text:
        return None, "NUL byte in line"
    return text.rstrip("\r"), None


def _is_header(fields: Sequence[str]) -> bool:
    names = {f.strip().lower().split(":")[0] for f in fields}
    return bool(names & {"user_id", "userid", "user", "item_id", "itemid"})


def read_delimited(path: Path, fmt: str, mapping: Mapping[str, str] | None = None,
                   default_behavior: str = "pv") -> Iterator[Batch]:
    """Batches from a file in one of FORMATS (see `recsys-db ingest --help`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    columns: list[int | None] | None = None
    expected = 0
    delimiter = "\t" if fmt == "movielens" else ","
    for first, lines, done in _iter_line_blocks(path):
        if fmt == "taobao" and columns is None and lines:
            head, _ = _decode(lines[0])
            columns, expected, is_header = _layout(fmt, _split(head or "", delimiter, fmt), mapping)
            if is_header:
                lines[0] = b""
        if fmt == "taobao":
            fast = _fast_taobao_block(first, lines)
            if fast is not None:
                yield Batch(fast[0], fast[1], done)
                continue
        out: list[str] = []
        problems: list[tuple[int, str]] = []
        for offset, raw_line in enumerate(lines):
            line_no = first + offset
            text, problem = _decode(raw_line)
            if problem is not None:
                raw = raw_line.decode("utf-8", "backslashreplace").rstrip("\r")
                out.append(bad_line(line_no, problem, raw))
                problems.append((line_no, problem))
                continue
            assert text is not None
            if not text.strip():
                continue
            fields = _split(text, delimiter, fmt)
            if columns is None:
                columns, expected, is_header = _layout(fmt, fields, mapping)
                if is_header:
                    continue
            if len(fields) != expected:
                problem = f"expected {expected} columns, found {len(fields)}"
                out.append(bad_line(line_no, problem, text))
                problems.append((line_no, problem))
                continue
            values = [fields[c] if c is not None else None for c in columns]
            if fmt != "taobao" and columns[3] is None:
                values[3] = default_behavior
            values[4] = normalize_ts(values[4])
            out.append(staged_line(line_no, values))
        yield Batch("".join(out), len(out), done, problems)


def _fast_taobao_block(first: int, lines: list[bytes]) -> tuple[str, int] | None:
    """COPY text for a block of clean Taobao lines, or None when any line needs the slow path.

    Clean: valid UTF-8, five comma-separated fields, no characters that COPY would treat
    specially. Real logs are clean nearly always, so this is the path that sets the load speed.
    """
    try:
        text = b"\n".join(lines).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ch in text for ch in ("\t", "\\", "\x00", "\r", '"')):
        return None
    out = []
    for offset, line in enumerate(text.split("\n")):
        if line.count(",") != 4:
            if line.strip():
                return None
            continue
        fields = line.replace(",", "\t")
        out.append(f"{first + offset}\t{fields}\t\\N\t\\N\n")
    return "".join(out), len(out)


def _split(text: str, delimiter: str, fmt: str) -> list[str]:
    if fmt == "csv" and '"' in text:
        return next(csv.reader([text]))
    return text.split(delimiter)


def _layout(fmt: str, fields: Sequence[str], mapping: Mapping[str, str] | None
            ) -> tuple[list[int | None], int, bool]:
    """Column index of each of FIELDS, the expected column count, and whether this is a header."""
    header = fmt == "csv" or _is_header(fields)  # csv: the first line always names the columns
    if fmt == "taobao":
        return [0, 1, 2, 3, 4], 5, header
    if fmt == "movielens" and not header:  # u.data: user item rating timestamp
        return [0, 1, None, None, 3], 4, False
    if not header:
        raise ValueError(f"format {fmt!r} needs a header line naming the columns")
    names = [f.strip().lower().split(":")[0] for f in fields]  # RecBole: 'user_id:token'
    wanted = {"user_id": "user_id", "item_id": "item_id", "category_id": "category_id",
              "behavior": "behavior", "ts": "ts"}
    aliases = {"ts": ("ts", "timestamp", "time"), "behavior": ("behavior", "behavior_type")}
    wanted.update({k: v.lower() for k, v in (mapping or {}).items()})
    columns: list[int | None] = []
    for name in FIELDS:
        candidates = (wanted[name],) if mapping and name in mapping else aliases.get(name, (name,))
        index = next((names.index(c) for c in candidates if c in names), None)
        if index is None and name in ("user_id", "item_id", "ts"):
            raise ValueError(f"no column for {name} in header {list(fields)}; use a mapping")
        columns.append(index)
    return columns, len(fields), True


# --------------------------------------------------------------------------- values


def normalize_ts(value: Any) -> str | None:
    """Unix seconds as text for SQL: numbers pass, ISO 8601 text and datetimes are converted.

    Text that is neither is passed through unchanged so the SQL rule reports it as unparseable.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return repr(dt.timestamp())
    if isinstance(value, date):
        return normalize_ts(datetime(value.year, value.month, value.day))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    text = str(value).strip()
    if not text or text.lstrip("-").replace(".", "", 1).isdigit():
        return text or None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return normalize_ts(dt)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_rows(rows: Iterable[Any], default_behavior: str = "pv") -> Iterator[Batch]:
    """Batches from an iterable of tuples (FIELDS order) or mappings (FIELDS as keys)."""
    out: list[str] = []
    problems: list[tuple[int, str]] = []
    count = 0
    for count, row in enumerate(rows, start=1):
        if isinstance(row, Mapping):
            values = [row.get(name) for name in FIELDS]
            if values[4] is None:
                values[4] = row.get("timestamp")
            if values[3] is None:
                values[3] = default_behavior
        else:
            seq = list(row)
            if len(seq) not in (4, 5):
                problem = f"expected 5 fields (user_id, item_id, category_id, behavior, ts), " \
                          f"found {len(seq)}"
                out.append(bad_line(count, problem, repr(row)))
                problems.append((count, problem))
                continue
            values = seq if len(seq) == 5 else [seq[0], seq[1], None, seq[2], seq[3]]
        ts = normalize_ts(values[4])
        cells = [_cell(v) for v in values[:4]] + [ts]
        bad = next((c for c in cells if c is not None and "\x00" in c), None)
        if bad is not None:
            out.append(bad_line(count, "NUL byte in value", repr(row)))
            problems.append((count, "NUL byte in value"))
        else:
            out.append(staged_line(count, cells))
        if len(out) >= ROWS_PER_BATCH:
            yield Batch("".join(out), len(out), count, problems)
            out, problems = [], []
    if out:
        yield Batch("".join(out), len(out), count, problems)


def read_dataframe(frame: Any, mapping: Mapping[str, str] | None = None,
                   default_behavior: str = "pv") -> Iterator[Batch]:
    """Batches from a pandas DataFrame with FIELDS columns (or renamed through `mapping`)."""
    renamed = frame.rename(columns={v: k for k, v in (mapping or {}).items()})
    if "ts" not in renamed.columns and "timestamp" in renamed.columns:
        renamed = renamed.rename(columns={"timestamp": "ts"})
    missing = [c for c in ("user_id", "item_id", "ts") if c not in renamed.columns]
    if missing:
        raise ValueError(f"DataFrame lacks column(s) {missing}; has {list(frame.columns)}")
    for name in ("category_id", "behavior"):
        if name not in renamed.columns:
            renamed[name] = None if name == "category_id" else default_behavior
    records = renamed[list(FIELDS)].itertuples(index=False, name=None)
    return read_rows(records, default_behavior)
