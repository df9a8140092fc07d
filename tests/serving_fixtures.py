"""Shared set-up of the serving tests: a small trained database and a tiny compiled ranker."""

from __future__ import annotations

import os

import psycopg
import pytest
from conftest import create_database


def trained_database(server_url: str, template_db: str, tmp: pytest.TempPathFactory,
                     prefix: str, *, users: int, events: int, seed: int) -> tuple[str, str]:
    """A database cloned from the template with a synthetic log (300 items), an interest model
    (dim 8, 1 epoch), a CF version and a tiny compiled ranker, all active: (URL, name)."""
    from recsys_db import synth
    from recsys_db.cf import train_cf
    from recsys_db.ingest import load_events
    from recsys_db.interest.train import TrainConfig
    from recsys_db.interest.trainer import train_interest

    name = f"{prefix}_{os.getpid()}"
    url = create_database(server_url, name, template_db)
    path = tmp.mktemp(prefix) / "synth.csv"
    synth.generate(path, users=users, items=300, events=events, seed=seed)
    load_events(path, url=url)
    with psycopg.connect(url) as conn:
        train_interest(conn, TrainConfig(dim=8, epochs=1, max_len=20, negatives=64),
                       checkpoint_dir=tmp.mktemp("checkpoints"))
        train_cf(conn)
        install_tiny_ranker(conn, label=prefix)
    return url, name


def install_tiny_ranker(conn: psycopg.Connection, seed: int = 0, label: str = "test") -> int:
    """A compiled LightGBM ranker (3 trees on random data, the real compiler and activation),
    so that serving_score calls a compiled function, as after train-ranker."""
    import lightgbm
    import numpy as np

    from recsys_db.ranker.compile import compile_booster
    from recsys_db.registry import activate, create_version, mark_ready

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(300, 16))
    labels = (features[:, 2] + rng.normal(size=300) > 0).astype(int)
    booster = lightgbm.train({"objective": "binary", "num_leaves": 4, "verbose": -1,
                              "min_data_in_leaf": 5}, lightgbm.Dataset(features, labels),
                             num_boost_round=3)
    with conn.transaction():
        version = create_version(conn, "ranker", {"test": label, "seed": seed})
        conn.execute(compile_booster(booster, f"recsys.ranker_score_v{version}"))
        mark_ready(conn, version, {})
    activate(conn, version)
    conn.commit()
    return version
