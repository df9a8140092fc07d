"""bench/scale.py runs end to end at a tiny size and its last line carries every key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scale.py"
KEYS = {"ingest_events_per_s", "train_epoch_s", "train_peak_rss_mb", "hnsw_build_s", "cf_s",
        "ranker_s", "recommend_p50_ms", "recommend_p99_ms", "qps_2", "qps_8", "db_size_mb",
        "recommend_precomputed_p50_ms", "recommend_precomputed_p99_ms", "precompute_users_per_s"}


def test_scale_bench_prints_every_key(db_url: str, tmp_path: Path) -> None:
    # db_url points RECSYS_DATABASE_URL at the test server: the bench makes its own scratch db
    out = subprocess.run([sys.executable, str(BENCH), "--events", "8000", "--items", "800",
                          "--users", "200", "--queries", "20", "--pgbench-seconds", "1",
                          "--json"], check=True, capture_output=True, text=True, timeout=600,
                         cwd=tmp_path).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["events"] == 8000 and figures["ingest_events_per_s"] > 0
    assert figures["train_peak_rss_mb"] > 0 and figures["qps_2"] > 0
    assert set(figures["met"]) <= KEYS
    ranker_parts = [figures[f"ranker_{p}"] for p in ("interest_s", "helpers_s", "lists_s", "fit_s")]
    assert 0 < sum(ranker_parts) <= figures["ranker_s"] + 0.2  # each rounded to 0.1 s


def test_a_bench_child_reports_its_own_peak_memory_not_its_parents() -> None:
    """train_peak_rss_mb comes from the interest job's own process. ru_maxrss would not do:
    on Linux a child started with fork + exec reports its parent's peak when that was
    higher."""
    import resource

    import numpy as np

    if not Path("/proc/self/status").exists():
        pytest.skip("VmHWM is Linux's; elsewhere peak_rss_mb is ru_maxrss")
    block = np.ones(1536 * 2**20 // 8)  # this process peaks above 1.5 GB ...
    del block
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = ("import resource, sys; sys.path.insert(0, sys.argv[1]); import common; "
             "print(common.peak_rss_mb(), round(resource.getrusage("
             "resource.RUSAGE_SELF).ru_maxrss / 1024))")
    out = subprocess.run([sys.executable, "-c", child, str(BENCH.parent)], check=True,
                         capture_output=True, text=True, timeout=120).stdout.split()
    own, inherited = int(out[0]), int(out[1])
    assert parent_peak >= 1536 and inherited >= 1536  # ... which ru_maxrss hands on
    assert 0 < own < 1000  # the child itself imports numpy and psycopg only
