"""bench/scale.py runs end to end at a tiny size and its last line carries every key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scale.py"
KEYS = {"ingest_events_per_s", "train_epoch_s", "train_peak_rss_mb", "hnsw_build_s", "cf_s",
        "ranker_s", "recommend_p50_ms", "recommend_p99_ms", "qps_2", "qps_8", "db_size_mb"}


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
