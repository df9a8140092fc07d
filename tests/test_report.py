"""The HTML report: every section on a trained Taobao database, and on empty/partial ones."""

from __future__ import annotations

import base64
import json
import re

import psycopg
import pytest
import torch

from recsys_db.cf import train_cf
from recsys_db.evaluation.suite import run_suite
from recsys_db.ingest import load_events
from recsys_db.interest.train import TrainConfig
from recsys_db.interest.trainer import train_interest
from recsys_db.report import write_report
from recsys_db.sequences import load_event_log

SECTION_IDS = ("data-health", "model-quality", "interest-migration", "serving")
PNG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _pngs(html: str) -> list[bytes]:
    images = [base64.b64decode(m, validate=True) for m in PNG.findall(html)]
    assert all(i.startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    return images


def _record_eval(conn: psycopg.Connection) -> None:
    """A real (cheap) evaluation, recorded the way `recsys-db eval` records it."""
    log = load_event_log(conn)
    report = run_suite(log, "leave-one-out", ["most_popular", "repeat"])
    conn.execute("INSERT INTO recsys.job_runs (job, status, finished_at, metrics) "
                 "VALUES ('eval', 'succeeded', now(), %s)",
                 (json.dumps({"split": report["split"], "description": report["description"],
                              "results": report["results"]}, default=str),))
    conn.commit()


@pytest.fixture
def trained(db_url, taobao_events, tmp_path):
    load_events(taobao_events)
    load_events([("u-1", "i-1", "c-1", "click", 1511544070)], on_error="quarantine",
                source_name="bad.csv")
    threads = torch.get_num_threads()
    try:
        with psycopg.connect(db_url) as conn:
            # One thread: on 2 shared cores, oversubscribed torch threads are several times
            # slower. The setting is global, so it is put back afterwards.
            train_interest(conn, TrainConfig(dim=16, epochs=2, max_len=20, threads=1))
            train_cf(conn)
            _record_eval(conn)
            yield conn
    finally:
        torch.set_num_threads(threads)


def test_report_shows_every_section_on_a_trained_database(trained, tmp_path):
    conn = trained
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "recommend.json").write_text(json.dumps(
        {"p50_ms": 7.5, "p99_ms": 21.0, "qps_2": 180.2, "qps_8": 210.0,
         "knn_floor_p50_ms": 1.2, "measured_at": "2026-01-02T03:04:05+00:00",
         "machine": "x86_64 2 cpu"}))
    most_active = [r[0] for r in conn.execute(
        "SELECT u.user_id FROM recsys.events e JOIN recsys.users u USING (user_key) "
        "GROUP BY u.user_id ORDER BY count(*) DESC, min(u.user_key) LIMIT 3")]
    conn.commit()
    steps = []
    out = tmp_path / "out" / "report.html"
    summary = write_report(conn, out, bench_dir=bench,
                           progress=lambda label, done, total: steps.append((label, done, total)))
    html = out.read_text(encoding="utf-8")

    assert summary.path == out and summary.sections == list(SECTION_IDS)
    assert summary.users == most_active
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in html
    # data health 2, training curves + eval + versions 3, heatmap + 3 users 4, latency 1
    assert len(_pngs(html)) == summary.images == 10
    assert "nothing yet" not in html and "no eval run recorded" not in html
    assert "unknown behavior" in html  # the quarantined row's reason
    model_quality = html.split('id="model-quality"')[1].split("<section")[0]
    assert "most_popular" in model_quality and "repeat" in model_quality
    assert "NDCG@10" in model_quality
    for user in most_active:
        assert f"<h4>User {user}</h4>" in html
        assert f"category shares of user {user}" in html
    assert "Interest drift" in html and "Predicted next" in html
    serving = html.split('id="serving"')[1]
    assert "p99_ms" in serving and "x86_64 2 cpu" in serving
    assert [s[1] for s in steps] == list(range(1, 9)) and steps[-1] == ("write", 8, 8)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    chosen = write_report(conn, out, users=[most_active[-1]], bench_dir=tmp_path / "none")
    html = out.read_text(encoding="utf-8")
    assert chosen.users == [most_active[-1]] and chosen.images == 7
    assert "no benchmark run found" in html
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp files left

    with pytest.raises(ValueError, match="'no-such-user'"):
        write_report(conn, tmp_path / "never.html", users=["1", "no-such-user"])
    assert not (tmp_path / "never.html").exists()


def test_report_on_an_empty_then_partial_database(conn, tmp_path):
    out = tmp_path / "report.html"
    summary = write_report(conn, out, bench_dir=tmp_path)
    html = out.read_text(encoding="utf-8")
    assert summary.images == 0 and summary.users == []
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in html
        part = html.split(f'<section id="{section}">')[1].split("</section>")[0]
        assert "nothing yet" in part or "no eval run" in part
    assert "no eval run recorded" in html and "no benchmark run found" in html

    # One event by a user whose ids are markup (and mathtext): escaped, drawn literally.
    weird = "<script>alert(1)</script>$x$"
    conn.execute("SELECT recsys.track_event(%s, %s, 'cart', '2024-05-01T10:00:00Z', %s)",
                 (weird, "<b>item</b>", "cat & <i>dog</i>"))
    summary = write_report(conn, out, users=[weird], bench_dir=tmp_path)
    html = out.read_text(encoding="utf-8")
    assert summary.users == [weird]
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert "User &lt;script&gt;alert(1)&lt;/script&gt;$x$" in html
    # events per day, active per day, the user's shares; no model, transitions or eval yet
    assert len(_pngs(html)) == summary.images == 3
    assert "no active interest model" in html and "No predicted next categories" in html


def test_report_cli(db_url, tmp_path):
    import json

    from typer.testing import CliRunner

    from recsys_db.cli import app

    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--json",
                                      "--bench-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["path"] == str(out.resolve()) and out.is_file()
    assert summary["sections"] == ["data-health", "model-quality", "interest-migration",
                                   "serving"]
    bad = CliRunner().invoke(app, ["report", "--out", str(out), "--user", "nobody"])
    assert bad.exit_code == 1 and "nobody" in bad.output
