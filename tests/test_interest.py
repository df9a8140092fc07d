"""Interest model: pgvector order = model order, atomic activation, live advance = full re-run,
checkpoint resume, interest_profile / drift, and the category head on a planted signal."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import torch

from recsys_db import synth
from recsys_db.interest import store
from recsys_db.interest.features import log_steps
from recsys_db.interest.live import refresh_states
from recsys_db.interest.states import encode_histories
from recsys_db.interest.train import TrainConfig, build_vocabs, train
from recsys_db.interest.trainer import InterestJobConfig, train_interest, user_states_for
from recsys_db.jobs.runner import run_job
from recsys_db.registry import active_version
from recsys_db.sequences import load_event_log
from recsys_db.synth.log import event_log

SMALL = TrainConfig(dim=16, epochs=2, batch_size=32, max_len=20, seed=1)


def _active(conn: psycopg.Connection) -> int | None:
    return active_version(conn, "interest")


@pytest.mark.parametrize("encoder", ["lstm", "gru", "attention"])
def test_pgvector_order_equals_model_order(db_url, synthetic, encoder):
    with psycopg.connect(db_url) as conn:
        metrics = train_interest(conn, TrainConfig(**{**SMALL.__dict__, "encoder": encoder}))
        loaded = store.load_model(conn)
        assert loaded.version_id == metrics["version_id"] == _active(conn)
        log = load_event_log(conn)
        steps = log_steps(log, loaded.items, loaded.categories)
        enc = encode_histories(loaded.model, steps, log.offsets)
        with torch.no_grad():
            scores = loaded.model.item_scores(loaded.model.user_vector(enc.h))
        scores[:, 0] = float("-inf")
        dim = loaded.model.shape.dim + 1
        conn.execute("SET hnsw.ef_search = 200")
        conn.execute("SET enable_seqscan = off")  # tiny test catalog: force the HNSW path
        for row in (0, 7, 42):
            user = int(log.users[row])
            expected = loaded.items.keys[scores[row].topk(10).indices.numpy() - 1].tolist()
            got = [r[0] for r in conn.execute(
                f"SELECT item_key FROM recsys.item_embeddings e WHERE version_id = %s "
                f"ORDER BY embedding::vector({dim}) <#> (SELECT state FROM recsys.user_states "
                f"WHERE user_key = %s AND version_id = %s)::vector({dim}) LIMIT 10",
                (loaded.version_id, user, loaded.version_id))]
            assert got == expected
        plan = conn.execute(
            f"EXPLAIN SELECT item_key FROM recsys.item_embeddings_v{loaded.version_id} "
            f"ORDER BY embedding::vector({dim}) <#> "
            f"(SELECT state FROM recsys.user_states LIMIT 1)::vector({dim}) LIMIT 10").fetchall()
        assert "hnsw" in " ".join(r[0] for r in plan)


def test_failed_job_leaves_active_version_serving(db_url, synthetic, monkeypatch):
    first = run_job("train-interest", config=InterestJobConfig(SMALL))
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT count(*) FROM recsys.user_states").fetchone()[0]

    def die(*args, **kwargs):  # the process dies while writing user states
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(store, "write_states", die)
    with pytest.raises(KeyboardInterrupt):
        run_job("train-interest", config=InterestJobConfig(SMALL))
    with psycopg.connect(db_url) as conn:
        assert _active(conn) == first["version_id"]
        assert conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM recsys.user_states").fetchone()[0] == before
        parts = conn.execute("SELECT count(*) FROM pg_inherits "
                             "WHERE inhparent = 'recsys.item_embeddings'::regclass").fetchone()
        assert parts[0] == 1
        status = conn.execute("SELECT status, error FROM recsys.job_runs ORDER BY run_id DESC "
                              "LIMIT 1").fetchone()
        assert status[0] == "failed" and "killed mid-write" in status[1]


@pytest.mark.parametrize("encoder", ["lstm", "attention"])
def test_live_advance_equals_full_rerun(db_url, synthetic, encoder):
    with psycopg.connect(db_url) as conn:
        train_interest(conn, TrainConfig(**{**SMALL.__dict__, "encoder": encoder}))
        version = _active(conn)
        # New events for existing users and a brand-new user, via the SQL door.
        for n, (user, item) in enumerate([("3", "17"), ("3", "18"), ("9", "5"), ("new", "7")]):
            conn.execute("SELECT recsys.track_event(%s, %s, 'pv', "
                         "'2017-12-05+00'::timestamptz + %s * interval '1 minute', '1')",
                         (user, item, n))
        conn.commit()
        stats = refresh_states(conn)
        assert stats.advanced == 2 and stats.recomputed == 1
        loaded = store.load_model(conn)
        log = load_event_log(conn)
        enc = encode_histories(loaded.model, log_steps(log, loaded.items, loaded.categories),
                               log.offsets)
        rows = conn.execute(
            "SELECT s.user_key, s.state::real[], s.n_events FROM recsys.user_states s "
            "WHERE version_id = %s", (version,)).fetchall()
        assert len(rows) == log.n_users
        with torch.no_grad():
            full = loaded.model.pgvector_user(loaded.model.user_vector(enc.h)).numpy()
        index = {int(u): i for i, u in enumerate(log.users)}
        for user_key, state, n_events in rows:
            i = index[user_key]
            assert n_events == log.offsets[i + 1] - log.offsets[i]
            np.testing.assert_allclose(state, full[i], rtol=1e-4, atol=1e-5)
        # the stay-or-migrate parts too: the same as a full re-run's
        rerun = user_states_for(loaded.model, loaded.items, loaded.categories, log)
        stored = {r[0]: r[1:] for r in conn.execute(
            "SELECT user_key, stay_items, stay_bias, stay_query::real[], log_stay,"
            " migrate_offset, p_migrate, next_categories FROM recsys.user_states"
            " WHERE version_id = %s", (version,))}
        for i, user_key in enumerate(log.users.tolist()):
            items, bias, query, log_stay, offset, p_migrate, next_cats = stored[user_key]
            assert items == rerun.stay_items[i].tolist()
            np.testing.assert_allclose(bias, rerun.stay_bias[i], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(query, rerun.stay_query[i], rtol=1e-4, atol=1e-5)
            assert log_stay == pytest.approx(rerun.log_stay[i], rel=1e-4, abs=1e-5)
            assert offset == pytest.approx(rerun.migrate_offset[i], rel=1e-4, abs=1e-5)
            assert p_migrate == pytest.approx(rerun.p_migrate[i], rel=1e-4, abs=1e-5)
            assert next_cats[:3] == rerun.next_categories[i][:3].tolist()
        assert refresh_states(conn).users == 0  # nothing new: nothing to do


def test_training_resumes_from_checkpoint(db_url, synthetic, tmp_path):
    with psycopg.connect(db_url) as conn:
        log = load_event_log(conn)
    config = TrainConfig(**{**SMALL.__dict__, "epochs": 3, "patience": 10})
    straight = train(log, config)
    ckpt = tmp_path / "ckpt"
    partial = train(log, config, checkpoint_dir=ckpt, stop_after_epochs=2)  # "interrupted"
    assert partial.epochs_run == 2 and any(ckpt.iterdir())
    resumed = train(log, config, checkpoint_dir=ckpt)
    assert resumed.resumed_from == 2 and resumed.epochs_run == 3
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b)


def test_interest_profile_and_drift(conn):
    for n, cat in enumerate(["a"] * 6 + ["b"] * 3):
        conn.execute("SELECT recsys.track_event('u', %s, 'pv', "
                     "'2017-11-25+00'::timestamptz + %s * interval '1 day', %s)",
                     (f"i{n}", n, cat))
    rows = conn.execute("SELECT category_id, long_term_share, recent_share "
                        "FROM recsys.interest_profile('u')").fetchall()
    shares = {r[0]: (r[1], r[2]) for r in rows}
    assert shares["a"][0] == pytest.approx(6 / 9) and shares["b"][0] == pytest.approx(3 / 9)
    assert shares["b"][1] > 0.8  # the last 3 days were all b: recent share moved to b
    drift, gaining, losing, _ = conn.execute(
        "SELECT * FROM recsys.interest_drift('u')").fetchone()
    assert 0.2 < drift <= 1 and gaining == ["b"] and losing == ["a"]
    assert conn.execute("SELECT count(*) FROM recsys.interest_profile('nobody')").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT * FROM recsys.interest_profile('u', '-1 day')")
    # pairs a->a, a->b, b->b
    assert conn.execute("SELECT recsys.refresh_category_transitions()").fetchone()[0] == 3
    assert conn.execute("SELECT n FROM recsys.category_transitions c JOIN recsys.categories f "
                        "ON f.category_key = c.from_category_key JOIN recsys.categories t "
                        "ON t.category_key = c.to_category_key WHERE f.category_id = 'a' "
                        "AND t.category_id = 'b'").fetchone()[0] == 1


def test_category_head_recovers_planted_migration(tmp_path):
    """On synthetic data, the predicted next-category distribution after an event in category c
    is close to the generator's true P(next | c)."""
    spec = synth.make_spec(users=300, items=300, events=30_000, seed=2, n_categories=8)
    log = event_log(spec)
    config = TrainConfig(dim=32, epochs=6, batch_size=64, max_len=30, seed=0,
                         category_weight=1.0, full_softmax_max_items=1_000)
    result = train(log, config)
    items, cats = build_vocabs(log)
    enc = encode_histories(result.model, log_steps(log, items, cats), log.offsets)
    with torch.no_grad():  # the whole category head: stay and migrate parts
        probs = result.model.category_log_probs(
            enc.h, torch.from_numpy(enc.recent[:, 1]),
            torch.from_numpy(enc.recent[:, 2])).exp().numpy()[:, 1:]
    last_cat = log.category[log.offsets[1:] - 1]
    tvs = []
    for c in np.unique(last_cat):
        true = spec.next_category_probs(int(c))
        pred = probs[last_cat == c].mean(axis=0)
        aligned = np.zeros_like(true)
        aligned[np.searchsorted(spec.category_ids, cats.keys)] = pred
        tvs.append(0.5 * np.abs(aligned - true).sum())
    assert np.mean(tvs) < 0.15, tvs


def test_worker_picks_up_tracked_events(db_url, synthetic):
    import threading
    import time

    from recsys_db.interest.live import run_worker

    with psycopg.connect(db_url) as conn:
        train_interest(conn, SMALL)
    thread = threading.Thread(target=run_worker, kwargs={"url": db_url, "poll_seconds": 0.2,
                                                         "stop_after": 6.0})
    thread.start()
    with psycopg.connect(db_url, autocommit=True) as conn:
        event_id = conn.execute("SELECT recsys.track_event('5', '17', 'cart')").fetchone()[0]
        deadline = time.monotonic() + 5
        seen = None
        while time.monotonic() < deadline and seen != event_id:
            seen = conn.execute("SELECT s.last_event_id FROM recsys.user_states s JOIN "
                                "recsys.users u USING (user_key) WHERE u.user_id = '5'"
                                ).fetchone()[0]
            time.sleep(0.05)
    thread.join()
    assert seen == event_id


def test_validation_scores_a_random_sample_of_users_when_capped():
    """max_valid_users: early stopping ranks every item for that many users only (full ranking
    costs users x items); each sampled history keeps its own target."""
    from recsys_db.interest.validation import validation_split

    spec = synth.make_spec(users=200, items=500, events=6_000, seed=4)
    log = event_log(spec)

    def rows(valid):
        return [(tuple(valid.steps.item[valid.offsets[r]:valid.offsets[r + 1]]),
                 int(valid.target_item[r]), int(valid.target_category[r]))
                for r in range(len(valid.target_item))]

    train_all, _, _, every = validation_split(log)
    train_some, _, _, some = validation_split(log, max_users=25, seed=3)
    assert len(every.target_item) > 100 and len(some.target_item) == 25
    assert len(some.offsets) == 26 and set(rows(some)) <= set(rows(every))
    assert np.array_equal(train_some.event_id, train_all.event_id)  # training is unchanged
    assert rows(validation_split(log, max_users=25, seed=3)[3]) == rows(some)
    assert rows(validation_split(log, max_users=10_000)[3]) == rows(every)
    with pytest.raises(ValueError, match="max_valid_users"):
        TrainConfig(max_valid_users=-1)


def test_validation_and_states_in_small_blocks_give_the_same_figures(monkeypatch):
    """At a million items, validation and the stored states score a few users at a time
    (rows_per_block; at 200k users x 25k categories the whole category matrix alone would take
    20 GB): the figures must not depend on the block size."""
    from recsys_db.interest import encoder
    from recsys_db.interest.train import validate
    from recsys_db.interest.validation import validation_split

    spec = synth.make_spec(users=120, items=400, events=4_000, seed=5)
    log = event_log(spec)
    train_log, items, categories, valid = validation_split(log)
    result = train(train_log, TrainConfig(dim=16, epochs=1, max_len=20), valid, items=items,
                   categories=categories)
    whole = validate(result.model, valid)
    states = user_states_for(result.model, items, categories, train_log)
    monkeypatch.setattr(encoder, "LOGIT_BUDGET", 3 * (len(items) + 1))
    assert encoder.rows_per_block(len(items) + 1) == 3
    assert encoder.rows_per_block(len(categories) + 1) > 3  # categories in larger blocks
    assert validate(result.model, valid) == pytest.approx(whole, abs=1e-9)
    blocked = user_states_for(result.model, items, categories, train_log)
    assert len(states.user_key) == len(train_log.users) > 100
    np.testing.assert_array_equal(blocked.next_categories, states.next_categories)
    np.testing.assert_allclose(blocked.next_probs, states.next_probs, atol=1e-7)
    np.testing.assert_allclose(blocked.migrate_offset, states.migrate_offset, atol=1e-6)
    monkeypatch.setattr(encoder, "LOGIT_BUDGET", 2 * (len(categories) + 1))
    again = user_states_for(result.model, items, categories, train_log)
    np.testing.assert_array_equal(again.next_categories, states.next_categories)
    np.testing.assert_allclose(again.next_probs, states.next_probs, atol=1e-7)


@pytest.mark.parametrize(("users", "items"), [(3, 5), (256, 4096), (1, 1)])
def test_log_partition_is_the_masked_logsumexp(users, items):
    """The streamed log Z of the stored states equals a logsumexp over whole rows without the
    padding column and each row's recent ids, in any block sizes (blocks split rows and the
    catalog unevenly; a row's recent ids fall in several blocks, or it has none)."""
    from recsys_db.interest.encoder import log_partition, recent_mask

    gen = torch.Generator().manual_seed(0)
    n, d = 23, 6
    vectors = torch.randn(n + 1, d, generator=gen) * 3
    u = torch.randn(10, d, generator=gen)
    ids = torch.randint(0, n + 1, (10, 4), generator=gen)
    ids[0] = 0  # an empty history
    ids[1] = torch.tensor([1, 2, 3, 4])  # several in the first block
    ids[2] = torch.tensor([n, n - 1, 7, 7])  # a repeat, the last block
    want = (u @ vectors.T).masked_fill(recent_mask(ids, n), float("-inf")).logsumexp(-1)
    got = log_partition(u, vectors, ids, users=users, items=items)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # every class excluded: -inf, as logsumexp gives
    tiny = torch.randn(3, d, generator=gen)
    assert torch.isneginf(log_partition(u[:1], tiny, torch.tensor([[1, 2]]), 1, 2)).all()


def test_stay_heads_start_their_behavior_biases_at_the_log_default_weights():
    """A carted item starts log 3 ahead of a viewed one in the stay attention, as in the
    behavior-weighted `history` count; keys without a default weight start at 0."""
    from recsys_db.interest.encoder import InterestModel, ModelShape
    from recsys_db.sequences import BEHAVIOR_KEYS

    model = InterestModel(ModelShape(10, 4, 8, "lstm", 0.0, 5, window=5))
    for head in (model.item_stay, model.category_stay):
        bias = head.behavior_bias.weight[:, 0]
        assert bias[BEHAVIOR_KEYS["pv"]] == 0.0 and bias[0] == 0.0 and bias[9] == 0.0
        assert torch.allclose(bias[[BEHAVIOR_KEYS["fav"], BEHAVIOR_KEYS["cart"],
                                    BEHAVIOR_KEYS["buy"]]], torch.tensor([2.0, 3.0, 4.0]).log())
