"""train-ranker: lists from the serving SQL, LightGBM lambdarank, compiled scorer, budget."""

from __future__ import annotations

from datetime import UTC, datetime

import lightgbm as lgb
import numpy as np
import psycopg
import pytest
import torch

from recsys_db import synth
from recsys_db.cf import train_cf
from recsys_db.ingest import load_events
from recsys_db.interest import store
from recsys_db.interest.train import TrainConfig
from recsys_db.interest.trainer import train_interest
from recsys_db.ranker.train import (
    Lists,
    RankerConfig,
    asof_model,
    asof_versions,
    build_lists,
    fit,
    sample_events,
    sample_users,
    train_ranker,
)
from recsys_db.registry import active_version, drop_versions
from recsys_db.sequences import load_event_log

WEIGHTS = {1: 1, 2: 2, 3: 3, 4: 4}  # pv, fav, cart, buy (recsys.behavior_types)
TINY = TrainConfig(dim=16, epochs=1, max_len=20)


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
        # where the time went, for the job run's metrics
        parts = [result[k] for k in ("interest_train_s", "helpers_s", "lists_s", "fit_s")]
        assert all(p >= 0 for p in parts) and 0 < sum(parts) <= result["seconds"] + 0.2
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


def test_list_features_come_from_a_model_that_never_saw_the_label_windows(ready):
    """The active model was trained on every event; vector scores from it would leak the
    answers of the training lists, so the lists' encoder only sees events before them."""
    with psycopg.connect(ready) as conn:
        log = load_event_log(conn)
        cut = np.quantile(log.ts, 0.6)
        before = datetime.fromtimestamp(cut, UTC)
        model = asof_model(conn, before, TINY)
        seen_before = np.unique(log.item[log.ts < cut])
        only_later = np.setdiff1d(np.unique(log.item[log.ts >= cut]), seen_before)
        assert len(only_later) > 0 and len(seen_before) > 0
        assert (model.items.index(only_later) == 0).all()  # unknown to the model
        assert (model.items.index(seen_before) > 0).all()

        result = train_ranker(conn, RankerConfig(num_trees=10), activate=False,
                              interest=TINY)
        assert result["interest_as_of"] == result["cutoffs"][0]
        with pytest.raises(ValueError, match="no events before"):
            asof_model(conn, datetime.fromtimestamp(log.ts.min(), UTC), TINY)


def test_the_asof_encoder_trains_on_a_sample_of_users_but_knows_every_item(ready):
    """Past `asof_max_events` the lists' encoder trains on whole users drawn at random: its
    cost stops growing with the log, and every item still gets its vector and category."""
    with psycopg.connect(ready) as conn:
        log = load_event_log(conn)
        cut = np.quantile(log.ts, 0.6)
        before = log.take(log.ts < cut)
        sample = sample_events(before, 2_000, seed=0)
        assert 0 < len(sample) <= 2_000 and sample.n_users < before.n_users
        for u, key in enumerate(sample.users):  # whole users: every event of each one
            mine = before.user == key
            np.testing.assert_array_equal(sample.event_id[sample.user_slice(u)],
                                          before.event_id[mine])
        assert sample_events(before, 2_000, seed=0).event_id.tolist() == \
            sample.event_id.tolist()
        assert sample_events(before, 0, seed=0) is before
        assert sample_events(before, len(before), seed=0) is before

        model = asof_model(conn, datetime.fromtimestamp(cut, UTC), TINY, max_events=2_000)
        every = np.unique(before.item)
        assert len(model.items) == len(every) and (model.items.index(every) > 0).all()
        not_sampled = np.setdiff1d(every, sample.item)
        assert len(not_sampled) > 0
        categories = model.model.item_category[torch.from_numpy(model.items.index(every))]
        assert (categories > 0).all()  # items outside the sample keep their category


def test_helper_cf_keeps_only_the_neighbours_the_lists_read(ready):
    with psycopg.connect(ready) as conn:
        full = train_cf(conn, activate=False, status="building")["version_id"]
        some = np.array(conn.execute("SELECT DISTINCT item_key FROM recsys.item_neighbors "
                                     "WHERE version_id = %s ORDER BY 1 LIMIT 30",
                                     (full,)).fetchall())[:, 0]
        part = train_cf(conn, activate=False, status="building", items=some)["version_id"]
        rows = {v: conn.execute("SELECT item_key, neighbor_key, score FROM recsys.item_neighbors "
                                "WHERE version_id = %s AND item_key = ANY(%s) ORDER BY 1, 2",
                                (v, some.tolist())).fetchall() for v in (full, part)}
        assert rows[full] == rows[part] and len(rows[part]) > 30
        assert conn.execute("SELECT count(DISTINCT item_key) FROM recsys.item_neighbors "
                            "WHERE version_id = %s", (part,)).fetchone()[0] == len(some)
        with pytest.raises(ValueError, match="building"):
            train_cf(conn, items=some)
        conn.rollback()
        drop_versions(conn, [full, part])


def test_labels_are_behavior_weights_plus_a_bonus_for_the_next_item(ready):
    with psycopg.connect(ready) as conn:
        log = load_event_log(conn)
        cut = int(np.quantile(log.ts, 0.8))
        at, until = datetime.fromtimestamp(cut, UTC), datetime.fromtimestamp(cut + 43_200, UTC)
        interest, cf = asof_versions(conn, at, store.load_model(conn))
        try:
            lists = build_lists(conn, at, until, interest, cf, next_bonus=8)
        finally:
            conn.rollback()
            drop_versions(conn, [interest, cf])
        window = (log.ts >= cut) & (log.ts < cut + 43_200)
        checked = bonus_seen = 0
        for user in np.unique(lists.users)[:40]:
            mine = window & (log.user == user)
            first_item = log.item[mine][np.argmin(log.ts[mine])]  # log is in time order
            weight = {}
            for item, behavior in zip(log.item[mine], log.behavior[mine], strict=True):
                weight[item] = max(weight.get(item, 0), WEIGHTS[behavior])
            rows = lists.users == user
            for item, label in zip(lists.items[rows], lists.labels[rows], strict=True):
                expected = weight.get(item, 0) + (8 if item == first_item else 0)
                assert label == expected, (user, item)
                checked += 1
                bonus_seen += item == first_item
        assert checked > 100 and bonus_seen > 5


def test_ranker_options_are_checked():
    with pytest.raises(ValueError, match="train_windows=0"):
        RankerConfig(train_windows=0)
    with pytest.raises(ValueError, match="next_item_bonus=-1"):
        RankerConfig(next_item_bonus=-1)
    with pytest.raises(ValueError, match="max_users=-1"):
        RankerConfig(max_users=-1)
    assert RankerConfig.from_params({"max_users": 0}).max_users == 0  # 0: every label user


def test_sampled_users_are_a_seeded_subset():
    users = list(range(100, 1100, 3))
    sample = sample_users(users, 50, seed=0, window=1)
    assert len(sample) == 50 and set(sample) <= set(users) and sample == sorted(sample)
    assert sample == sample_users(users, 50, seed=0, window=1)  # same seed, same sample
    assert sample != sample_users(users, 50, seed=0, window=2)  # each window its own draw
    assert sample != sample_users(users, 50, seed=1, window=1)
    assert sample_users(users, 0, seed=0, window=1) == users  # 0: all
    assert sample_users(users[:10], 50, seed=0, window=1) == users[:10]


def test_same_lists_give_the_same_trees():
    rng = np.random.default_rng(3)
    def lists(n_users):
        users = np.repeat(np.arange(n_users), 30)
        feats = rng.normal(size=(len(users), 12))
        labels = np.clip(np.rint(feats[:, 0] + rng.normal(size=len(users))), 0, 4)
        return Lists(users, np.tile(np.arange(30), n_users), feats, labels)
    train, valid = lists(300), lists(100)
    models = {fit(train, valid, RankerConfig(), 200, 15).model_to_string() for _ in range(3)}
    assert len(models) == 1


def test_ranker_samples_users_per_window(ready):
    with psycopg.connect(ready) as conn:
        result = train_ranker(conn, RankerConfig(num_trees=10, max_users=15), activate=False)
        config = RankerConfig()
        assert result["valid_lists"] <= 15
        assert 15 < result["train_lists"] <= 15 * config.train_windows
        # the helper versions (one interest version for every cut-off, CF per cut-off) are gone
        assert conn.execute("SELECT count(*) FROM recsys.model_versions WHERE status = "
                            "'building'").fetchone()[0] == 0
