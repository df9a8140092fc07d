"""Settings and `recsys-db scheduler`: schedules from recsys.toml and the environment, two
schedulers never running the same job at once, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from recsys_db import synth
from recsys_db.errors import ConfigError
from recsys_db.ingest import load_events
from recsys_db.jobs.settings import DEFAULT_SCHEDULES, load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_settings_from_file_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("RECSYS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    assert load_settings().schedules == DEFAULT_SCHEDULES  # no file: defaults
    write(tmp_path / "recsys.toml", """
[schedule]
train-interest = "30 2 * * *"
refresh-states = "off"
[scheduler]
retries = 4
backoff_seconds = 5
[jobs.train-interest]
epochs = 3
encoder = "gru"
[registry]
activation_tolerance = 0.1
""")
    s = load_settings()
    assert s.schedules["train-interest"] == "30 2 * * *"
    assert s.schedules["refresh-states"] is None
    assert s.schedules["train-cf"] == DEFAULT_SCHEDULES["train-cf"]
    assert (s.retries, s.backoff_seconds, s.activation_tolerance) == (4, 5.0, 0.1)
    assert s.job_options == {"train-interest": {"epochs": 3, "encoder": "gru"}}
    monkeypatch.setenv("RECSYS_SCHEDULE_TRAIN_CF", "*/10 * * * * *")
    monkeypatch.setenv("RECSYS_JOB_RETRIES", "0")
    s = load_settings()
    assert s.schedules["train-cf"] == "*/10 * * * * *" and s.retries == 0


@pytest.mark.parametrize(("text", "message"), [
    ('[schedule]\ntrain-everything = "* * * * *"', "unknown job 'train-everything'"),
    ('[schedule]\ntrain-cf = "61 * * * *"', "schedule of train-cf '61 \\* \\* \\* \\*'"),
    ('[schedule]\ntrain-cf = "* * *"', "expected 5 cron fields"),
    ('[jobs.train-interest]\nepochz = 3', "unknown option\\(s\\) \\['epochz'\\]"),
    ("[registry]\nactivation_tolerance = 2", "activation_tolerance in \\[0, 1\\)"),
    ("[schedul]\n", "unknown section"),
    ("[schedule\n", "recsys.toml"),
])
def test_bad_settings_fail_with_their_name(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path / "recsys.toml", text))


def scheduler(url: str, config: Path, home: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "RECSYS_DATABASE_URL": url, "RECSYS_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "recsys_db.cli", "scheduler", "--config",
                             str(config), *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_two_schedulers_never_run_a_job_at_once(db_url, tmp_path):
    path = tmp_path / "events.csv"
    synth.generate(path, users=200, items=600, events=12_000, seed=4)
    load_events(path)
    config = write(tmp_path / "recsys.toml", "[schedule]\n" + "".join(
        f'{job} = "off"\n' for job in DEFAULT_SCHEDULES if job != "train-cf")
        + 'train-cf = "*/2 * * * * *"\n[scheduler]\nretries = 0\n')
    procs = [scheduler(db_url, config, tmp_path / f"home{n}", "--seconds", "9")
             for n in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all("scheduler: stopped" in o for o in outputs)
    with psycopg.connect(db_url) as conn:
        runs = conn.execute("SELECT status, started_at, finished_at, pid FROM recsys.job_runs "
                            "WHERE job = 'train-cf' ORDER BY started_at").fetchall()
    done = [r for r in runs if r[0] == "succeeded"]
    skipped = [r for r in runs if r[0] == "skipped"]
    assert {r[0] for r in runs} <= {"succeeded", "skipped"}
    assert len(done) >= 2, runs  # it ran on schedule (every 2 s for ~9 s)
    assert skipped, runs  # both fired at the same instants: the loser skipped
    for a, b in zip(done, done[1:], strict=False):  # never two at once
        assert a[2] <= b[1], (a, b)
    assert len({r[3] for r in runs}) == 2  # both schedulers took part


def test_scheduler_stops_cleanly_on_sigterm(db_url, tmp_path):
    config = write(tmp_path / "recsys.toml", '[schedule]\ntrain-interest = "0 3 * * *"\n'
                   + "".join(f'{job} = "off"\n' for job in DEFAULT_SCHEDULES
                             if job != "train-interest"))
    proc = scheduler(db_url, config, tmp_path / "home")
    lines = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:  # wait until it is up
        lines.append(line)
        if "scheduled train-interest" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, "".join(lines) + rest
    assert "received SIGTERM" in rest and "scheduler: stopped" in rest


def test_example_settings_file_is_valid():
    example = Path(__file__).resolve().parents[1] / "recsys.toml.example"
    settings = load_settings(example)
    assert settings.schedules == DEFAULT_SCHEDULES
    assert settings.job_options["train-interest"]["encoder"] == "lstm"
