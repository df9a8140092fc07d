"""train-interest on several processes (DDP, gloo, ranks spawned on this host): 2 workers learn
as well as 1, the job writes one version that serves, bad worker counts are refused."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from recsys_db import synth
from recsys_db.cli import app
from recsys_db.errors import ConfigError
from recsys_db.interest.distributed import shard_windows
from recsys_db.interest.train import TrainConfig, windows
from recsys_db.interest.train_config import MAX_WORKERS
from recsys_db.interest.trainer import InterestJobConfig
from recsys_db.interest.validation import fit_on_log
from recsys_db.sequences import EventLog
from recsys_db.synth.log import event_log


def _log(users: int, items: int, events: int) -> EventLog:
    return event_log(synth.make_spec(users=users, items=items, events=events, seed=1))


def test_two_workers_reach_the_validation_ndcg_of_one():
    """Same log, same held-out targets: the best next-item NDCG@10 of 2 workers is within 5%
    of 1 worker's, and both are far above chance (about 0.015 over 300 items)."""
    log = _log(users=500, items=300, events=10_000)
    base = TrainConfig(dim=16, max_len=20, batch_size=32, epochs=8, patience=2, threads=1)
    one, valid = fit_on_log(log, base)
    two, _ = fit_on_log(log, TrainConfig(**{**base.__dict__, "workers": 2}))
    assert valid is not None and len(valid.target_item) == 500
    assert one.best_metric > 0.2 and two.best_metric > 0.2, (one.history, two.history)
    assert abs(two.best_metric - one.best_metric) <= 0.05 * one.best_metric, (
        one.best_metric, two.best_metric)
    assert two.model.item_in.weight.shape == one.model.item_in.weight.shape  # same vocabulary
    assert two.epochs_run == len(two.history)  # every rank ran every epoch rank 0 recorded


def test_job_with_two_workers_writes_one_version_that_serves(db_url, synthetic):
    result = CliRunner().invoke(app, ["jobs", "run", "train-interest", "--workers", "2",
                                      "--epochs", "1", "--dim", "8", "--max-len", "20",
                                      "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout.strip().splitlines()[-1])
    with psycopg.connect(db_url) as conn:
        versions = conn.execute("SELECT version_id, params->>'workers' "
                                "FROM recsys.model_versions").fetchall()
        assert versions == [(run["version_id"], "2")]  # rank 0 alone wrote it
        user = conn.execute("SELECT user_id FROM recsys.users ORDER BY user_key LIMIT 1"
                            ).fetchone()[0]
        top = conn.execute("SELECT item_id FROM recsys.recommend(%s, k => 5)",
                           (user,)).fetchall()
    assert len(top) == 5


def test_users_are_split_between_ranks_without_overlap():
    log = _log(users=200, items=100, events=4_000)
    starts, _ = windows(log.offsets, 20)
    shards = [shard_windows(log.offsets, starts, rank, 3, seed=0) for rank in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(len(starts)))
    users = [set(np.searchsorted(log.offsets, starts[s], side="right") - 1) for s in shards]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 2 * int(np.diff(log.offsets).max() // 20 + 1)


@pytest.mark.parametrize("workers", [0, -1, MAX_WORKERS + 1, 1.5, "2", True])
def test_bad_worker_counts_are_refused(workers):
    with pytest.raises(ValueError, match="workers must be an integer from 1 to"):
        InterestJobConfig.from_params({"workers": workers})


def test_workers_and_tuning_do_not_mix():
    with pytest.raises(ValueError, match="one process"):
        InterestJobConfig.from_params({"workers": 2, "tune_minutes": 1})


def test_cli_refuses_zero_workers(db_url):
    result = CliRunner().invoke(app, ["jobs", "run", "train-interest", "--workers", "0"])
    assert isinstance(result.exception, ConfigError)  # `recsys-db` prints it as the error
    assert "workers must be an integer from 1 to" in str(result.exception)


class _Crash(Exception):
    pass


def test_an_interrupted_two_worker_run_resumes_from_rank_0s_checkpoint(tmp_path):
    """Rank 0 dies in epoch 2 (after its record, before its checkpoint; the other rank is
    stopped); the same run again resumes from rank 0's epoch-1 checkpoint on both ranks.
    (Not bit-equal to an uninterrupted run: the other ranks' random streams restart from
    rank 0's.)"""
    log = _log(users=120, items=200, events=3_000)
    config = TrainConfig(dim=8, max_len=20, batch_size=32, epochs=3, patience=10, threads=1,
                         workers=2, full_softmax_max_items=100, negatives=32)

    def crash(record: dict[str, float]) -> None:
        if record["epoch"] == 2:
            raise _Crash

    with pytest.raises(_Crash):
        fit_on_log(log, config, checkpoint_dir=tmp_path, on_epoch=crash)
    resumed, _ = fit_on_log(log, config, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 1 and resumed.epochs_run == 3
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.history[2]["loss"] < resumed.history[0]["loss"]


def test_more_workers_than_users_is_a_clear_error():
    log = _log(users=1, items=20, events=30)
    with pytest.raises(ValueError, match="fewer users with 2\\+ events than the 2 workers"):
        fit_on_log(log, TrainConfig(dim=8, max_len=20, epochs=1, threads=1, workers=2))
