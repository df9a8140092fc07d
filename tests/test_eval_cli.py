"""`recsys-db eval`: every method trained on the split's training part, JSON as the last line,
and the active production model left untouched."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from recsys_db import synth
from recsys_db.cli import app
from recsys_db.ingest import load_events


def test_eval_json_with_encoders_and_baselines(db_url, tmp_path):
    path = tmp_path / "synth.csv"
    synth.generate(path, users=150, items=300, events=9_000, seed=11)
    load_events(path)
    result = CliRunner().invoke(app, ["eval", "--split", "leave-one-out", "--methods",
                                      "lstm,gru,attention,most_popular,markov", "--epochs", "3",
                                      "--dim", "32", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["split"] == "leave-one-out"
    rows = {(r["method"], r["target"]): r for r in report["results"]}
    assert len(rows) == 10
    for row in rows.values():
        assert set(row) >= {"HR@10", "NDCG@10", "MRR@10", "Precision@10", "Recall@10", "AUC"}
        assert row["instances"] == 150
        # leave-one-out: one target per user
        assert row["Precision@10"] == pytest.approx(row["HR@10"] / 10)
        assert row["Recall@10"] == pytest.approx(row["HR@10"])
    # The planted migration is learnable: every encoder beats popularity on next category.
    for encoder in ("lstm", "gru", "attention"):
        assert rows[(encoder, "category")]["NDCG@10"] > rows[("most_popular", "category")][
            "NDCG@10"]
    with psycopg.connect(db_url) as conn:  # eval never writes a model version
        assert conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0] == 0


def test_eval_rejects_unknown_split_and_method(db_url, tmp_path):
    load_events([("u", "i", None, "pv", 1511544070), ("u", "j", None, "pv", 1511544071)])
    bad = CliRunner().invoke(app, ["eval", "--split", "random"])
    assert bad.exit_code == 1 and "split must be one of" in bad.output
    bad = CliRunner().invoke(app, ["eval", "--methods", "sasrec"])
    assert bad.exit_code == 1 and "unknown method(s) ['sasrec']" in bad.output
    bad = CliRunner().invoke(app, ["eval", "--test-fraction", "0.1"])
    assert bad.exit_code == 1 and "apply to --split time only" in bad.output
    bad = CliRunner().invoke(app, ["eval", "--split", "time", "--test-fraction", "0.7"])
    assert bad.exit_code == 1 and "test fraction must be in (0, 0.5)" in bad.output


def test_eval_sql_pipeline_on_time_split(db_url, tmp_path):
    path = tmp_path / "synth.csv"
    synth.generate(path, users=400, items=500, events=24_000, seed=12)
    load_events(path)
    with psycopg.connect(db_url) as conn:
        functions_before = conn.execute("SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
                                        "ON n.oid = p.pronamespace WHERE n.nspname = 'recsys'"
                                        ).fetchone()[0]
    result = CliRunner().invoke(app, ["eval", "--split", "time", "--test-fraction", "0.1",
                                      "--methods",
                                      "fused,vector,cf,session,trending,most_popular",
                                      "--epochs", "2", "--dim", "16", "--breakdown", "--json"])
    assert result.exit_code == 0, result.output
    assert "target_kind" in result.output and "6-50" in result.output  # the printed breakdown
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["params"]["test_fraction"] == 0.1
    rows = {(r["method"], r["target"]): r for r in report["results"]}
    assert {m for m, _ in rows} == {"fused", "vector", "cf", "session", "trending",
                                    "most_popular"}
    assert all(0 <= r["NDCG@10"] <= 1 for r in rows.values())
    assert rows[("fused", "item")]["NDCG@10"] > rows[("trending", "item")]["NDCG@10"]
    assert all(0 <= r["AUC"] <= 1 and r["Recall@10"] <= 1 for r in rows.values())
    for (method, target), row in rows.items():  # each grouping partitions the test users
        for by in ("history_length", "target_kind"):
            parts = [g for g in report["breakdown"]
                     if (g["method"], g["target"], g["by"]) == (method, target, by)]
            assert sum(g["instances"] for g in parts) == row["instances"]
    with psycopg.connect(db_url) as conn:  # every helper version and scorer is gone again
        assert conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
                            "ON n.oid = p.pronamespace WHERE n.nspname = 'recsys'"
                            ).fetchone()[0] == functions_before
    bad = CliRunner().invoke(app, ["eval", "--split", "leave-one-out", "--methods", "fused"])
    assert bad.exit_code == 1 and "need --split time" in bad.output
