"""Typed job configs: every job's config validates its values, round-trips through params, and
rejects keys it does not know, from the settings file, the CLI and the registry alike."""

from __future__ import annotations

import psycopg
import pytest

from recsys_db.cf import CFConfig
from recsys_db.errors import ConfigError
from recsys_db.interest import store
from recsys_db.interest.train_config import TrainConfig
from recsys_db.interest.trainer import InterestJobConfig
from recsys_db.jobs.catalog import JOBS
from recsys_db.jobs.runner import config_from_settings
from recsys_db.jobs.settings import Settings
from recsys_db.ranker.train import RankerConfig
from recsys_db.registry import activate, create_version, mark_ready

CONFIGS = [CFConfig(window=3, half_life_days=2.5, top_n=7),
           TrainConfig(encoder="gru", dim=8, epochs=2, dropout=0.2),
           RankerConfig(num_trees=12, learning_rate=0.1),
           InterestJobConfig(TrainConfig(dim=8), tune_minutes=1.5)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_configs_round_trip_through_params(config):
    params = config.to_params()
    assert type(config).from_params(params) == config
    assert set(params) <= type(config).option_names()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_unknown_keys_are_an_error_not_dropped(config):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['bogus'\]"):
        type(config).from_params({**config.to_params(), "bogus": 1})


@pytest.mark.parametrize(("config_type", "params", "message"), [
    (CFConfig, {"window": 0}, "window must be a positive integer"),
    (CFConfig, {"top_n": 2.5}, "top_n must be a positive integer"),
    (CFConfig, {"half_life_days": 0}, "half_life_days must be a number > 0"),
    (TrainConfig, {"encoder": "rnn"}, "encoder must be one of"),
    (TrainConfig, {"dropout": 1.0}, "dropout must be in"),
    (RankerConfig, {"num_leaves": 1}, "num_leaves=1"),
    (InterestJobConfig, {"tune_minutes": 0}, "tune_minutes: tune minutes must be"),
    (InterestJobConfig, {"epochs": 0}, "epochs must be a positive integer"),
])
def test_configs_validate_on_construction(config_type, params, message):
    with pytest.raises(ValueError, match=message):
        config_type.from_params(params)


def test_every_job_builds_its_config_from_settings_and_overrides():
    settings = Settings(job_options={"train-cf": {"top_n": 9}})
    assert config_from_settings("train-cf", settings) == CFConfig(top_n=9)
    assert config_from_settings("train-cf", settings, {"top_n": 4}) == CFConfig(top_n=4)
    assert config_from_settings("refresh-states", settings) is None
    with pytest.raises(ConfigError, match=r"refresh-states: unknown option\(s\) \['top_n'\]"):
        config_from_settings("refresh-states", settings, {"top_n": 4})
    for name, job in JOBS.items():  # defaults are valid configs
        assert (job.make_config() is None) == (job.config_ref is None), name


def test_active_config_rejects_a_key_it_does_not_know(conn: psycopg.Connection):
    """A version trained with a setting this code does not know: an error naming it (it used to
    be dropped silently, training the ranker's encoder with other settings than intended)."""
    params = {**TrainConfig(dim=8).to_params(), "max_item_key": 5}
    with conn.transaction():
        good = create_version(conn, "interest", params, dim=9)
        mark_ready(conn, good)
    activate(conn, good)
    assert store.active_config(conn) == TrainConfig(dim=8)
    with conn.transaction():
        odd = create_version(conn, "interest", {**params, "num_heads": 4}, dim=9)
        mark_ready(conn, odd)
    activate(conn, odd)
    with pytest.raises(ValueError, match=rf"interest version {odd}: unknown option\(s\) "
                                         r"\['num_heads'\]"):
        store.active_config(conn)
