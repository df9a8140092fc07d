"""Writing the events: `generate` / `write_spec` stream CSV rows (optionally gzipped)."""

from __future__ import annotations

import gzip
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from recsys_db.synth.events import EventBlock, iter_blocks
from recsys_db.synth.params import BEHAVIORS, HEADER, SynthParams
from recsys_db.synth.spec import SyntheticSpec, make_spec

ProgressFn = Callable[[int], Any]

@dataclass(frozen=True)
class GenerateStats:
    """What `generate` wrote."""

    rows: int
    users: int
    items_used: int
    categories: int
    categories_used: int
    seconds: float


def generate(
    out: str | os.PathLike[str] | IO[str] | IO[bytes],
    users: int,
    items: int,
    events: int,
    seed: int = 0,
    *,
    progress: ProgressFn | None = None,
    **options: Any,
) -> GenerateStats:
    """Write exactly ``events`` rows (plus header) to a path (``.gz`` gzips) or open stream."""
    spec = make_spec(users, items, events, seed, **options)
    return write_spec(out, spec, progress=progress)


def write_spec(
    out: str | os.PathLike[str] | IO[str] | IO[bytes],
    spec: SyntheticSpec,
    *,
    progress: ProgressFn | None = None,
) -> GenerateStats:
    """Generate the events of ``spec`` block by block and stream them to ``out``."""
    started = time.perf_counter()
    if isinstance(out, str | os.PathLike):
        with _open_path(Path(out)) as handle:
            counters = _write_blocks(handle.write, spec, progress)
    else:
        counters = _write_blocks(_byte_writer(out), spec, progress)
    rows, items_seen, categories_seen = counters
    return GenerateStats(
        rows=rows,
        users=spec.params.users,
        items_used=int(items_seen.sum()),
        categories=spec.n_categories,
        categories_used=int(categories_seen.sum()),
        seconds=time.perf_counter() - started,
    )


def _write_blocks(
    write: Callable[[bytes], Any], spec: SyntheticSpec, progress: ProgressFn | None
) -> tuple[int, np.ndarray, np.ndarray]:
    items_seen = np.zeros(spec.params.items + 1, dtype=bool)
    categories_seen = np.zeros(spec.n_categories + 1, dtype=bool)
    widths = _column_widths(spec.params)
    write(HEADER.encode("ascii"))
    rows = 0
    for block in iter_blocks(spec):
        write(_format_rows(block, widths))
        items_seen[block.item_id] = True
        categories_seen[block.category_id] = True
        rows += len(block.ts)
        if progress is not None:
            progress(rows)
    return rows, items_seen, categories_seen


def _column_widths(params: SynthParams) -> tuple[int, int, int, int]:
    biggest = (params.users, params.items, params.categories, params.start_ts + params.window_s)
    return tuple(len(str(value)) for value in biggest)  # type: ignore[return-value]


_BEHAVIOR_BYTES = np.array([list(b.ljust(4, "\0").encode("ascii")) for b in BEHAVIORS], np.uint8)


def _format_rows(block: EventBlock, widths: tuple[int, int, int, int]) -> bytes:
    """CSV bytes of a block: fixed-width digit matrix, NUL padding squeezed out."""
    user_w, item_w, cat_w, ts_w = widths
    columns = [
        _digits(block.user_id, user_w),
        _digits(block.item_id, item_w),
        _digits(block.category_id, cat_w),
        _BEHAVIOR_BYTES[block.behavior],
        _digits(block.ts, ts_w),
    ]
    width = sum(column.shape[1] for column in columns) + len(columns)
    matrix = np.empty((len(block.ts), width), dtype=np.uint8)
    at = 0
    for number, column in enumerate(columns):
        matrix[:, at : at + column.shape[1]] = column
        at += column.shape[1]
        matrix[:, at] = ord("\n") if number == len(columns) - 1 else ord(",")
        at += 1
    flat = matrix.ravel()
    return flat[flat != 0].tobytes()


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative ints < 2**32, leading zeros as NUL."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.uint32)
    for k in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, np.uint32(10))
        out[:, k] = digit
    out += ord("0")
    for k in range(width - 1):
        out[values < 10 ** (width - 1 - k), k] = 0
    return out


def _open_path(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":  # mtime=0 and no name: the same bytes every run
        raw = open(path, "wb")  # noqa: SIM115 - closed by GzipFile's owner below
        return _GzipCloser(raw)
    return open(path, "wb")  # noqa: SIM115 - returned to a with-block


class _GzipCloser(gzip.GzipFile):
    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _byte_writer(out: IO[str] | IO[bytes]) -> Callable[[bytes], Any]:
    if isinstance(out, io.TextIOBase):
        return lambda data: out.write(data.decode("ascii"))
    return out.write  # type: ignore[return-value]

