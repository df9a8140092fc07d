"""Shared bits of the benchmarks: argument handling, JSON output, timing helpers."""

from __future__ import annotations

import json
import platform
import time
from typing import Any

import numpy as np


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3),
            "p95_ms": round(float(np.percentile(arr, 95)), 3),
            "p99_ms": round(float(np.percentile(arr, 99)), 3)}


def machine() -> str:
    import os

    return f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}"


def emit(figures: dict[str, Any], as_json: bool, name: str | None = None) -> None:
    """Print the figures; with --json the last line is one JSON object. With `name`, the
    figures are also kept as $RECSYS_HOME/bench/NAME.json (the report's serving section)."""
    for key, value in figures.items():
        print(f"  {key:28s} {value}")
    if name is not None:
        from datetime import UTC, datetime

        from recsys_db.config import bench_dir

        folder = bench_dir()
        folder.mkdir(exist_ok=True)
        record = {**figures, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "machine": machine()}
        tmp = folder / f".{name}.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(folder / f"{name}.json")
    if as_json:
        print(json.dumps(figures))


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
