"""`train-interest --tune MINUTES`: an Optuna search on validation targets within a time budget,
its trials in the run's metrics, the chosen settings in the version's params; bad budgets are
rejected with a clear message, from Python, the settings file and the command line."""

from __future__ import annotations

import json
import math

import psycopg
import pytest
from typer.testing import CliRunner

from recsys_db import synth
from recsys_db.cli import app
from recsys_db.errors import ConfigError
from recsys_db.interest.trainer import InterestJobConfig
from recsys_db.interest.tune import check_minutes
from recsys_db.jobs.runner import run_from_settings, run_job
from recsys_db.jobs.settings import Settings, check_options

TINY = {"dim": 32, "epochs": 2, "batch_size": 32, "max_len": 20, "seed": 1, "threads": 1}


def _run_and_version(db_url: str, run_id: int) -> tuple[dict, dict]:
    with psycopg.connect(db_url) as conn:
        run_metrics = conn.execute("SELECT metrics FROM recsys.job_runs WHERE run_id = %s",
                                   (run_id,)).fetchone()[0]
        params = conn.execute("SELECT params FROM recsys.model_versions WHERE job_run_id = %s",
                              (run_id,)).fetchone()[0]
    return run_metrics, params


def test_tune_records_trials_and_chosen_params(db_url, synthetic):
    result = run_job("train-interest",
                     config=InterestJobConfig.from_params({**TINY, "tune_minutes": 0.2}))
    run_metrics, params = _run_and_version(db_url, result["run_id"])
    tuning = run_metrics["tuning"]
    trials = tuning["trials"]
    assert len(trials) >= 2 and tuning["minutes"] == 0.2, json.dumps(trials)
    assert all({"number", "params", "value", "state", "seconds"} <= set(t) for t in trials)
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}
    # trial 0 is the given config (layers and lr resolved), so the search never ends below it
    assert trials[0]["params"]["dim"] == 32 and trials[0]["params"]["batch_size"] == 32
    finished = [t for t in trials if t["state"] == "COMPLETE"]
    best = max(finished, key=lambda t: t["value"])
    assert tuning["best_trial"] == best["number"]
    assert tuning["best_params"] == best["params"]
    # the version is the best trial's model: its params are the chosen settings...
    for name, value in best["params"].items():
        assert params[name] == pytest.approx(value), name
    assert params["epochs"] == TINY["epochs"] and params["seed"] == TINY["seed"]
    # ...and its validation score is the best trial's
    assert run_metrics["valid_score"] == pytest.approx(best["value"])
    # the budget holds: no trial starts after it, the one running then stops after an epoch
    started = sum(t["seconds"] for t in trials[:-1])
    assert started <= 0.2 * 60 + 1


@pytest.mark.parametrize("bad", [0, -1, "abc", "", None, True, math.nan, math.inf])
def test_bad_budgets_are_rejected(bad):
    with pytest.raises(ValueError, match="tune minutes must be a number of minutes > 0"):
        check_minutes(bad)
    with pytest.raises(ConfigError, match=r"\[jobs.train-interest\]: tune_minutes"):
        check_options("train-interest", {"tune_minutes": bad})


def test_bad_budget_fails_before_training(db_url):
    with pytest.raises(ConfigError, match="got 0"):
        run_from_settings("train-interest", Settings(), {"tune_minutes": 0})
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0] == 0


def test_cli_tune_flag(db_url, synthetic):
    runner = CliRunner()
    for bad in ("0", "-2", "nan", "soon", ""):
        result = runner.invoke(app, ["jobs", "run", "train-interest", "--tune", bad])
        message = f"--tune: expected a number of minutes > 0, got {bad!r}"
        assert result.exit_code == 1 and message in result.output, result.output
    result = runner.invoke(app, ["jobs", "run", "train-cf", "--tune", "1"])
    assert result.exit_code == 1 and "--tune only apply to train-interest" in result.output

    result = runner.invoke(app, ["jobs", "run", "train-interest", "--tune", "0.1", "--dim", "32",
                                 "--epochs", "2", "--max-len", "20", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["tuning"]["minutes"] == 0.1 and len(out["tuning"]["trials"]) >= 1
    assert "trial 0 complete: valid NDCG@10" in result.output
    _, params = _run_and_version(db_url, out["run_id"])
    assert {k: params[k] for k in out["tuning"]["best_params"]} == out["tuning"]["best_params"]


def test_settings_file_takes_tune_minutes(tmp_path):
    from recsys_db.jobs.settings import load_settings

    good = tmp_path / "good.toml"
    good.write_text('[jobs.train-interest]\ndim = 32\ntune_minutes = 30\n')
    assert load_settings(good).job_options["train-interest"]["tune_minutes"] == 30
    bad = tmp_path / "bad.toml"
    bad.write_text('[jobs.train-interest]\ntune_minutes = "soon"\n')
    with pytest.raises(ConfigError, match="tune_minutes: tune minutes must be a number"):
        load_settings(bad)


def test_trial_running_at_the_deadline_stops_after_its_epoch():
    """A budget shorter than one epoch: trial 0 (the given config) stops after its first epoch,
    keeps it, and no other trial starts."""
    from recsys_db.interest.train import TrainConfig
    from recsys_db.interest.tune import tune_on_log
    from recsys_db.synth.log import event_log

    spec = synth.make_spec(users=200, items=500, events=30_000, seed=3)  # > 0.06 s an epoch
    log = event_log(spec)
    config = TrainConfig(**{**TINY, "epochs": 5, "patience": 10})
    search = tune_on_log(log, config, 0.001)
    [trial] = search.summary["trials"]
    assert trial["state"] == "COMPLETE" and trial["stopped_at_deadline"]
    assert trial["epochs"] == 1 and search.result.epochs_run == 1
    assert search.config.epochs == 5  # the settings as chosen; metrics say how many ran
    assert search.summary["best_value"] == pytest.approx(trial["value"])
