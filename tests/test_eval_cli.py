"""`recsys-db eval`: every method trained on the split's training part, JSON as the last line,
and the active production model left untouched."""

from __future__ import annotations

import json

import psycopg
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
        assert set(row) >= {"HR@10", "NDCG@10", "MRR@10"} and row["instances"] == 150
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


def test_eval_sql_pipeline_on_time_split(db_url, tmp_path):
    path = tmp_path / "synth.csv"
    synth.generate(path, users=400, items=500, events=24_000, seed=12)
    load_events(path)
    with psycopg.connect(db_url) as conn:
        functions_before = conn.execute("SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
                                        "ON n.oid = p.pronamespace WHERE n.nspname = 'recsys'"
                                        ).fetchone()[0]
    result = CliRunner().invoke(app, ["eval", "--split", "time", "--methods",
                                      "fused,vector,cf,session,trending,most_popular",
                                      "--epochs", "2", "--dim", "16", "--json"])
    assert result.exit_code == 0, result.output
    rows = {(r["method"], r["target"]): r
            for r in json.loads(result.output.strip().splitlines()[-1])["results"]}
    assert {m for m, _ in rows} == {"fused", "vector", "cf", "session", "trending",
                                    "most_popular"}
    assert all(0 <= r["NDCG@10"] <= 1 for r in rows.values())
    assert rows[("fused", "item")]["NDCG@10"] > rows[("trending", "item")]["NDCG@10"]
    with psycopg.connect(db_url) as conn:  # every helper version and scorer is gone again
        assert conn.execute("SELECT count(*) FROM recsys.model_versions").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
                            "ON n.oid = p.pronamespace WHERE n.nspname = 'recsys'"
                            ).fetchone()[0] == functions_before
    bad = CliRunner().invoke(app, ["eval", "--split", "leave-one-out", "--methods", "fused"])
    assert bad.exit_code == 1 and "need --split time" in bad.output
