"""Bounded storage: the maintenance job, checkpoint removal, and 30 simulated days of the default
schedule whose table and file sizes stay flat after warm-up."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from recsys_db import synth
from recsys_db.errors import ConfigError
from recsys_db.ingest import load_events
from recsys_db.jobs.maintenance import MaintenanceConfig, maintain
from recsys_db.jobs.runner import run_from_settings
from recsys_db.jobs.settings import DEFAULT_SCHEDULES, load_settings
from recsys_db.scheduler import due_runs


def test_config_defaults_and_bad_values(tmp_path):
    assert MaintenanceConfig() == MaintenanceConfig(None, 30, 3)
    assert MaintenanceConfig.from_params({"events_days": 400}).events_days == 400
    for bad in ({"keep_versions": 0}, {"job_runs_days": 1.5}, {"events_days": True},
                {"keep": 3}):
        with pytest.raises(ValueError):
            MaintenanceConfig.from_params(bad)
    path = tmp_path / "recsys.toml"
    path.write_text("[jobs.maintenance]\nkeep_versions = 0\n")
    with pytest.raises(ConfigError, match=r"\[jobs.maintenance\]: keep_versions"):
        load_settings(path)
    assert DEFAULT_SCHEDULES["maintenance"]  # on by default


def _partitions(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'recsys.events'::regclass ORDER BY 1")]


def test_events_days_drops_only_whole_old_months(conn, db_url):
    for ts in ("2024-01-10", "2024-02-20", "2024-03-31 23:00", "2024-04-02"):
        conn.execute("SELECT recsys.track_event('u1', 'i1', 'pv', %s::timestamptz)", (ts,))
    conn.execute("INSERT INTO recsys.rejected_events (source, reason, rejected_at) VALUES "
                 "('old.csv', 'bad', '2024-01-01'), ('new.csv', 'bad', '2024-04-01')")
    assert _partitions(conn) == ["events_2024m01", "events_2024m02", "events_2024m03",
                                 "events_2024m04", "events_default"]
    now = datetime(2024, 4, 15, tzinfo=UTC)
    with psycopg.connect(db_url) as work:  # cut-off 2024-03-16: March still holds newer events
        done = maintain(work, MaintenanceConfig(events_days=30), now=now)
    assert done["dropped_event_partitions"] == ["events_2024m01", "events_2024m02"]
    assert done["deleted_rejected_events"] == 1
    assert _partitions(conn) == ["events_2024m03", "events_2024m04", "events_default"]
    assert conn.execute("SELECT count(*) FROM recsys.events").fetchone()[0] == 2
    with psycopg.connect(db_url) as work:  # default: keep every event
        assert maintain(work, MaintenanceConfig(), now=now)["dropped_event_partitions"] == []
    assert len(_partitions(conn)) == 3


# A 30-day run of the default schedule with a moved clock. Every due run comes from the
# scheduler's own triggers (`due_runs`). The nightly jobs run for real (train-ranker every third
# night: it is the slowest), train-cf and maintenance at two of their hourly times; every other
# due run (refresh-states each minute, the remaining hourly ones) is recorded in job_runs as the
# runner records a run, at its time, so the run history has the schedule's full volume.
SETTINGS = """
[scheduler]
retries = 0
[jobs.train-interest]
dim = 8
epochs = 1
max_len = 10
window = 10
negatives = 64
threads = 1
[jobs.train-ranker]
num_trees = 5
train_windows = 1
[jobs.maintenance]
job_runs_days = 5
"""
REAL_HOURS = {3, 15}
DAYS = 30
WARM = 10  # day by which every window is full: job_runs_days 5, 3 versions per kind


def _for_real(at: datetime, job: str, day: int) -> bool:
    if job in ("train-interest", "refresh-transitions"):
        return True
    if job == "train-ranker":
        return day % 3 == 0
    if job in ("train-cf", "maintenance"):
        return at.hour in REAL_HOURS
    return job == "refresh-states" and at.hour == 0 and at.minute == 0


SIZES = """
SELECT (SELECT count(*) FROM recsys.job_runs),
       (SELECT count(*) FROM recsys.model_versions),
       (SELECT count(*) FROM recsys.model_activations),
       (SELECT count(*) FROM recsys.model_versions WHERE status = 'ready'),
       (SELECT count(*) FROM pg_class WHERE relnamespace = 'recsys'::regnamespace
          AND relname LIKE 'item\\_embeddings\\_v%%' AND relkind = 'r'),
       (SELECT count(*) FROM pg_proc WHERE pronamespace = 'recsys'::regnamespace
          AND proname LIKE 'ranker\\_score\\_v%%'),
       (SELECT count(*) FROM recsys.item_embeddings),
       (SELECT count(*) FROM recsys.user_states),
       (SELECT count(*) FROM recsys.item_neighbors),
       (SELECT count(*) FROM recsys.item_stats),
       (SELECT count(*) FROM recsys.category_embeddings),
       (SELECT count(*) FROM recsys.model_blobs),
       (SELECT sum(pg_total_relation_size(oid)) FROM pg_class
        WHERE relnamespace = 'recsys'::regnamespace AND relkind IN ('r', 'm'))
"""
NAMES = ("job_runs", "model_versions", "model_activations", "ready_versions",
         "embedding_partitions", "ranker_functions", "item_embeddings", "user_states",
         "item_neighbors", "item_stats", "category_embeddings", "model_blobs", "table_bytes")


RELATIONS = """
SELECT relname, pg_total_relation_size(oid) FROM pg_class
WHERE relnamespace = 'recsys'::regnamespace AND relkind IN ('r', 'm')
"""


def _home_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file())


def test_thirty_days_of_the_default_schedule_stay_flat(db_url, conn, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("RECSYS_HOME", str(home))
    (tmp_path / "recsys.toml").write_text(SETTINGS)
    settings = load_settings(tmp_path / "recsys.toml")
    assert settings.schedules == DEFAULT_SCHEDULES
    log = tmp_path / "synth.csv"
    synth.generate(log, users=60, items=150, events=2_000, seed=3)
    load_events(log)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    sizes: dict[int, dict[str, int]] = {}
    real = recorded = 0
    relations: dict[int, dict[str, int]] = {}
    spent: dict[str, float] = {}
    t0 = time.perf_counter()
    for day in range(1, DAYS + 1):
        day_start = start + timedelta(days=day - 1)
        only_recorded: list[tuple[datetime, str]] = []
        for at, job in due_runs(settings, day_start, day_start + timedelta(days=1)):
            if not _for_real(at, job, day):
                only_recorded.append((at, job))
                continue
            t_job = time.perf_counter()
            result = run_from_settings(job, settings, clock=lambda at=at: at)
            spent[job] = spent.get(job, 0.0) + time.perf_counter() - t_job
            assert "skipped" not in result, (job, result)
            real += 1
        conn.execute(
            "INSERT INTO recsys.job_runs (job, status, started_at, finished_at, metrics) "
            "SELECT job, 'succeeded', at, at, %s::jsonb FROM unnest(%s::text[], "
            "%s::timestamptz[]) AS r(job, at)",
            (json.dumps({"simulated": True}), [j for _, j in only_recorded],
             [a for a, _ in only_recorded]))
        recorded += len(only_recorded)
        row = conn.execute(SIZES).fetchone()
        sizes[day] = {**dict(zip(NAMES, map(int, row), strict=True)),
                      "home_bytes": _home_bytes(home)}
        if day in (WARM, DAYS):
            relations[day] = dict(conn.execute(RELATIONS).fetchall())
    seconds = time.perf_counter() - t0
    print(f"\n{real} runs for real, {recorded} recorded, {seconds:.0f} s:",
          {job: round(s) for job, s in spent.items()})
    for day in (1, 5, WARM, 20, DAYS):
        print(f"day {day:2}: {sizes[day]}")
    print("grew from day", WARM, {name: (relations[WARM].get(name), size)
                                   for name, size in relations[DAYS].items()
                                   if size != relations[WARM].get(name)})
    assert real + recorded == DAYS * (1440 + 24 + 24 + 3)
    assert not list((home / "checkpoints").glob("*"))  # removed after each successful run
    warm, last = sizes[WARM], sizes[DAYS]
    for name in NAMES[:-1]:
        assert last[name] == warm[name], (name, warm[name], last[name])
        assert max(sizes[d][name] for d in range(WARM, DAYS + 1)) <= warm[name] + (
            warm[name] // 10), name
    assert last["table_bytes"] <= warm["table_bytes"] * 1.1
    assert last["home_bytes"] == warm["home_bytes"]
    assert last["ready_versions"] <= 3 * (3 + 2)
    assert last["job_runs"] < 6 * (1440 + 24 + 24 + 3)
