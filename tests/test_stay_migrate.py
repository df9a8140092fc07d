"""The stay-or-migrate heads: SQL serves the model's own scores, p_migrate means what it says."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import psycopg
import pytest
import torch

from recsys_db.ingest import load_events
from recsys_db.interest import store
from recsys_db.interest.features import log_steps
from recsys_db.interest.states import encode_histories
from recsys_db.interest.train import TrainConfig
from recsys_db.interest.trainer import train_interest
from recsys_db.sequences import load_event_log


@pytest.fixture
def small_copy_chunks(monkeypatch):
    """The version's item vectors and states are written 37 rows per COPY write (so the
    fixture's 200 users and ~600 items cross many chunk boundaries)."""
    monkeypatch.setattr(store, "COPY_ROWS", 37)


def test_sql_vector_score_is_the_model_log_probability(small_copy_chunks, trained):
    """features[1] of every vector candidate equals log P(next = item) of the model, for the
    user's recent items (stay part, computed in SQL) and for HNSW neighbours (migrate part)."""
    with psycopg.connect(trained, autocommit=True) as conn:
        loaded = store.load_model(conn)
        assert conn.execute("SELECT count(*) FROM recsys.user_states WHERE version_id = %s",
                            (loaded.version_id,)).fetchone()[0] == 200
        assert conn.execute("SELECT count(*) FROM recsys.item_embeddings WHERE version_id = %s",
                            (loaded.version_id,)).fetchone()[0] == len(loaded.items) > 37
        # the version's states were analyzed with it (sql/states.sql analyze_states)
        assert conn.execute("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                            "WHERE schemaname = 'recsys' AND relname = 'user_states'"
                            ).fetchone()[0]
        cf = conn.execute("SELECT version_id FROM recsys.model_versions WHERE kind = 'cf' "
                          "AND active").fetchone()[0]
        checked_stay = checked_migrate = 0
        for user_id in ("3", "11", "42"):
            user_key = conn.execute("SELECT user_key FROM recsys.users WHERE user_id = %s",
                                    (user_id,)).fetchone()[0]
            log = load_event_log(conn, users=[user_key])
            enc = encode_histories(loaded.model, log_steps(log, loaded.items,
                                                           loaded.categories), log.offsets)
            recent = torch.from_numpy(enc.recent)
            with torch.no_grad():
                expected = loaded.model.item_log_probs(enc.h, recent[:, 0], recent[:, 2])[0]
            recent_items = set(loaded.items.keys[enc.recent[0, 0][enc.recent[0, 0] > 0] - 1])
            rows = conn.execute(
                "SELECT item_key, features[1] FROM recsys.candidate_features(%s, 'infinity',"
                " %s, %s) WHERE 'vector' = ANY(sources)",
                (user_key, loaded.version_id, cf)).fetchall()
            assert recent_items <= {r[0] for r in rows}, "every recent item is a candidate"
            for item_key, score in rows:
                column = int(loaded.items.index(np.array([item_key]))[0])
                assert score == pytest.approx(float(expected[column]), rel=1e-5, abs=1e-5)
                if item_key in recent_items:
                    checked_stay += 1
                else:
                    checked_migrate += 1
        assert checked_stay >= 10 and checked_migrate >= 100


def _planted_log(path: Path, seed: int = 0) -> set[str]:
    """Stayers browse the same 2 categories throughout; migrators move to a category they have
    never touched every 5 events. Returns the migrators' ids."""
    rng = np.random.default_rng(seed)
    migrators = set()
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["user_id", "item_id", "category_id", "behavior", "ts"])
        for u in range(240):
            migrates = u % 2 == 1
            if migrates:
                migrators.add(f"u{u}")
            home = rng.choice(40, 2, replace=False)
            fresh = iter(rng.permutation(np.arange(40, 400)))
            category = int(home[0])
            ts = 1_500_000_000 + u * 10_000
            for n in range(rng.integers(30, 60)):
                if migrates and n % 5 == 0:
                    category = int(next(fresh))
                elif not migrates:
                    category = int(home[rng.integers(2)])
                item = category * 10 + int(rng.integers(10))
                ts += int(rng.integers(30, 600))
                out.writerow([f"u{u}", f"i{item}", f"c{category}", "pv", ts])
    return migrators


def test_p_migrate_separates_stayers_from_migrators(db_url, tmp_path):
    """On a log with planted stayers and migrators, p_migrate ranks migrators above stayers
    (AUC >= 0.8), and apps read it in SQL: interest_drift and about_to_migrate."""
    path = tmp_path / "planted.csv"
    migrators = _planted_log(path)
    load_events(path)
    with psycopg.connect(db_url) as conn:
        train_interest(conn, TrainConfig(dim=16, epochs=5, max_len=20, window=20, batch_size=16,
                                         seed=3))
        rows = conn.execute("SELECT user_id, p_migrate FROM recsys.about_to_migrate(k => 1000)"
                            ).fetchall()
        assert len(rows) == 240
        p = np.array([r[1] for r in rows])
        is_migrator = np.array([r[0] in migrators for r in rows])
        auc = (p[is_migrator][:, None] > p[~is_migrator][None, :]).mean()
        assert auc >= 0.8, auc
        drift = conn.execute("SELECT p_migrate FROM recsys.interest_drift(%s)",
                             (rows[0][0],)).fetchone()[0]
        assert drift == pytest.approx(rows[0][1])
        assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
        top = conn.execute("SELECT count(*) FROM recsys.about_to_migrate(5, 0.0)").fetchone()[0]
        assert top == 5
        for sql, message in [("SELECT * FROM recsys.about_to_migrate(0)", "k must be"),
                             ("SELECT * FROM recsys.about_to_migrate(5, 1.5)", "min_p must be")]:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
                conn.execute(sql)
            conn.rollback()
