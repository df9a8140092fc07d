"""Model registry: rollback restores recommendations exactly, gc keeps what serving needs,
promotion keeps a worse version inactive, and the CLI does the same."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from recsys_db.cli import app
from recsys_db.interest import store
from recsys_db.interest.train import TrainConfig
from recsys_db.interest.trainer import train_interest, user_states_for
from recsys_db.registry import (
    RegistryError,
    activate,
    active_version,
    gc,
    promote,
    rollback,
)
from recsys_db.sequences import load_event_log

USERS = ("3", "17", "42", "no-such-user")


def recommendations(conn: psycopg.Connection) -> list[list[tuple]]:
    out = [conn.execute("SELECT * FROM recsys.recommend(%s, k => 10)", (u,)).fetchall()
           for u in USERS]
    conn.commit()
    return out


def copy_of_active(conn: psycopg.Connection) -> int:
    """A new ready interest version with the active model's weights (cheap: no training)."""
    loaded = store.load_model(conn)
    states = user_states_for(loaded.model, loaded.items, loaded.categories, load_event_log(conn))
    version = store.write_version(conn, loaded.model, loaded.items, loaded.categories, states,
                                  {}, {"valid_score": 0.1})
    conn.commit()
    return version


def test_rollback_restores_previous_recommendations_exactly(trained):
    with psycopg.connect(trained) as conn:
        first = active_version(conn, "interest")
        before = recommendations(conn)
        result = train_interest(conn, TrainConfig(dim=24, epochs=1, max_len=20, seed=9),
                                activate=False)
        second = result["version_id"]
        assert active_version(conn, "interest") == first
        assert activate(conn, second) == first
        after = recommendations(conn)
        assert after != before  # a different model serves different lists
        assert rollback(conn, "interest") == (second, first)
        assert active_version(conn, "interest") == first
        assert recommendations(conn) == before  # items, scores, ranks and reasons
        # rollback undoes the last activation: doing it again returns to the second version
        assert rollback(conn, "interest") == (first, second)
        assert recommendations(conn) == after
        reasons = [r for (r,) in conn.execute(
            "SELECT reason FROM recsys.model_activations WHERE kind = 'interest' "
            "ORDER BY activation_id")]
        assert reasons[-2:] == [f"rollback from version {second}", f"rollback from version {first}"]


def test_rollback_and_activate_refuse_what_they_cannot_do(trained):
    with psycopg.connect(trained) as conn:
        with pytest.raises(RegistryError, match="first one activated"):
            rollback(conn, "interest")
        with pytest.raises(RegistryError, match="no active ranker"):
            rollback(conn, "ranker")
        with pytest.raises(RegistryError, match="unknown model kind"):
            rollback(conn, "lstm")
        conn.rollback()
        with pytest.raises(RegistryError, match="no model version 999"):
            activate(conn, 999)


def test_promotion_keeps_a_worse_version_inactive(trained):
    with psycopg.connect(trained) as conn:
        active = active_version(conn, "interest")
        score = conn.execute("SELECT (metrics->>'valid_score')::float FROM "
                             "recsys.model_versions WHERE version_id = %s", (active,)).fetchone()[0]
        candidate = copy_of_active(conn)
        conn.execute("UPDATE recsys.model_versions SET metrics = %s WHERE version_id = %s",
                     (json.dumps({"valid_score": score * 0.9}), candidate))
        conn.commit()
        kept = promote(conn, candidate, tolerance=0.05)
        assert not kept.activated and "kept inactive" in kept.reason
        assert active_version(conn, "interest") == active
        # within a looser tolerance it is activated
        taken = promote(conn, candidate, tolerance=0.2)
        assert taken.activated and taken.replaced == active
        assert active_version(conn, "interest") == candidate


def test_gc_drops_old_versions_but_never_active_or_rollback_target(trained):
    with psycopg.connect(trained) as conn:
        v1 = active_version(conn, "interest")
        v2, v3, v4 = (copy_of_active(conn) for _ in range(3))
        activate(conn, v2)
        activate(conn, v3)  # active v3, rollback target v2; v4 newest but never active
        before = recommendations(conn)
        assert sorted(gc(conn, keep=1, dry_run=True)) == [v1]
        assert gc(conn, keep=1) == [v1]
        status = dict(conn.execute("SELECT version_id, status FROM recsys.model_versions "
                                   "WHERE kind = 'interest'").fetchall())
        assert status == {v1: "retired", v2: "ready", v3: "ready", v4: "ready"}
        assert conn.execute("SELECT to_regclass(%s)", (f"recsys.item_embeddings_v{v1}",)
                            ).fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM recsys.user_states WHERE version_id = %s",
                            (v1,)).fetchone()[0] == 0
        conn.commit()
        assert recommendations(conn) == before
        assert rollback(conn, "interest") == (v3, v2)
        with pytest.raises(RegistryError, match="retired"):
            activate(conn, v1)
        with pytest.raises(RegistryError, match="at least 1"):
            gc(conn, keep=0)


def test_models_cli(trained):
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {r["kind"] for r in rows} == {"interest", "cf"}
    assert sum(r["active"] for r in rows) == 2
    with psycopg.connect(trained) as conn:
        first = active_version(conn, "interest")
        second = copy_of_active(conn)
    assert runner.invoke(app, ["models", "activate", str(second)]).exit_code == 0
    done = runner.invoke(app, ["models", "rollback", "interest"])
    assert done.exit_code == 0 and f"to version {first}" in done.stdout
    gone = runner.invoke(app, ["models", "gc", "--keep", "1"])
    assert gone.exit_code == 0 and "dropped 0 versions" in gone.stdout  # both are protected
    bad = runner.invoke(app, ["models", "activate", "12345"])
    assert bad.exit_code != 0


def test_promotion_after_a_model_format_change_is_not_gated(trained):
    """The active version was stored in an older model format (before an upgrade): its
    validation metric meant something else, so a new version is activated, saying why."""
    with psycopg.connect(trained) as conn:
        active = active_version(conn, "interest")
        candidate = copy_of_active(conn)  # valid_score 0.1: far below the active's 0.9
        conn.execute("UPDATE recsys.model_blobs SET format = 'torch-state-dict-v2' "
                     "WHERE version_id = %s", (active,))
        conn.execute("UPDATE recsys.model_versions SET metrics = %s WHERE version_id = %s",
                     (json.dumps({"valid_score": 0.9}), active))
        conn.commit()
        result = promote(conn, candidate, tolerance=0.05)
        assert result.activated and "metrics not comparable" in result.reason
        assert active_version(conn, "interest") == candidate


def test_jobs_run_config_file_decides_the_activation_tolerance(trained, tmp_path, monkeypatch):
    """`jobs run --config X` promotes with X's activation_tolerance: not the one of
    $RECSYS_CONFIG, ./recsys.toml or the default (promote() once read those by itself)."""
    monkeypatch.delenv("RECSYS_ACTIVATION_TOLERANCE", raising=False)
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recsys.toml").write_text("[registry]\nactivation_tolerance = 0.22\n")
    (tmp_path / "env.toml").write_text("[registry]\nactivation_tolerance = 0.11\n")
    monkeypatch.setenv("RECSYS_CONFIG", str(tmp_path / "env.toml"))
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("[registry]\nactivation_tolerance = 0.37\n")
    with psycopg.connect(trained) as conn:
        active = active_version(conn, "interest")
    result = CliRunner().invoke(app, ["jobs", "run", "train-interest", "--config", str(chosen),
                                      "--epochs", "1", "--dim", "8", "--max-len", "20",
                                      "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout.strip().splitlines()[-1])
    assert f"active version {active}'s" in run["activation"]  # compared with the active one
    assert "37%" in run["activation"], run["activation"]
