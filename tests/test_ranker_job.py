"""train-ranker: lists from the serving SQL, LightGBM lambdarank, compiled scorer, budget."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import psycopg
import pytest

from recsys_db import synth
from recsys_db.cf import train_cf
from recsys_db.ingest import load_events
from recsys_db.interest.job import train_interest
from recsys_db.interest.train import TrainConfig
from recsys_db.ranker.train import RankerConfig, train_ranker
from recsys_db.registry import active_version


@pytest.fixture
def ready(db_url, tmp_path):
    path = tmp_path / "synth.csv"
    synth.generate(path, users=250, items=500, events=15_000, seed=9)
    load_events(path)
    with psycopg.connect(db_url) as conn:
        train_interest(conn, TrainConfig(dim=16, epochs=2, max_len=20))
        train_cf(conn)
    return db_url


def test_ranker_is_trained_compiled_and_served(ready):
    with psycopg.connect(ready) as conn:
        versions_before = conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0]
        result = train_ranker(conn, RankerConfig(num_trees=40))
        version = result["version_id"]
        assert active_version(conn, "ranker") == version
        assert result["valid_ndcg10"] > 0 and result["train_lists"] > 10
        # The helper versions (as-of interest and CF) are gone again.
        assert conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0] == \
            versions_before + 1
        # The stored booster and the installed SQL function agree on served candidates.
        text = conn.execute("SELECT convert_from(blob, 'UTF8') FROM recsys.model_blobs "
                            "WHERE version_id = %s", (version,)).fetchone()[0]
        booster = lgb.Booster(model_str=text)
        rows = conn.execute(
            "SELECT f.features, recsys.ranker_score_v" + str(version) + "(f.features) "
            "FROM recsys.candidate_features(5, 'infinity', %s, %s) f",
            (active_version(conn, "interest"), active_version(conn, "cf"))).fetchall()
        feats = np.array([[np.nan if v is None else v for v in r[0]] for r in rows])
        np.testing.assert_allclose([r[1] for r in rows], booster.predict(feats, raw_score=True),
                                   atol=1e-9)
        served = conn.execute("SELECT score FROM recsys.recommend('5', 5)").fetchall()
        assert len(served) == 5


def test_scoring_budget_trades_trees_for_speed(ready):
    with psycopg.connect(ready) as conn:
        result = train_ranker(conn, RankerConfig(num_trees=40, budget_ms=0.001))
        steps = result["tradeoffs"]
        assert len(steps) >= 2
        assert steps[-1]["trees"] < steps[0]["trees"] or steps[-1]["leaves"] < steps[0]["leaves"]
        metrics = conn.execute("SELECT metrics FROM recsys.model_versions WHERE version_id = %s",
                               (result["version_id"],)).fetchone()[0]
        assert metrics["tradeoffs"] == steps and metrics["budget_ms"] == 0.001
