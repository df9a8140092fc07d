"""`recsys-db eval`: offline evaluation, recorded as a run of the job runner."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from recsys_db.cli.common import bar, fail, out


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)


def eval_(
    split: Annotated[str, typer.Option(help="leave-one-out or time")] = "leave-one-out",
    test_fraction: Annotated[float | None, typer.Option(
        help="Time split: the last FRACTION of events (by timestamp) are the test period, the "
             "same fraction before them validation (default 0.1).")] = None,
    test_days: Annotated[float | None, typer.Option(
        help="Time split: the last DAYS days are the test period, the DAYS before them "
             "validation (instead of --test-fraction).")] = None,
    methods: Annotated[str, typer.Option(
        help="Comma-separated: lstm,gru,attention,most_popular,popular_last_day,repeat,"
             "markov,item_knn, and on the time split fused,vector,cf,session,trending,history "
             "(default: all that apply); opt-in: als,bpr (needs `pip install implicit`)")] = "",
    exclude_seen: Annotated[bool, typer.Option(
        "--exclude-seen", help="Mask items the user already interacted with.")] = False,
    epochs: Annotated[int, typer.Option(help="Maximum epochs of the encoders.")] = 30,
    dim: Annotated[int, typer.Option(help="Encoder size.")] = 64,
    breakdown: Annotated[bool, typer.Option(
        "--breakdown", help="Also print the results by history length and target kind "
                            "(always in --json).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object.")] = False,
) -> None:
    """Offline evaluation: every method trained on the split's training part, full ranking."""
    from recsys_db.evaluation.runner import format_table
    from recsys_db.evaluation.suite import default_methods, run_suite
    from recsys_db.interest.train_config import TrainConfig
    from recsys_db.jobs.runner import Skipped, recorded_run
    from recsys_db.sequences import load_event_log

    names = [m.strip() for m in methods.split(",") if m.strip()] or default_methods(split)
    try:
        with recorded_run("eval") as (conn, run):
            log = load_event_log(conn)
            conn.commit()
            if len(log) == 0:
                fail("no events to evaluate on: load some with `recsys-db ingest` first")
            with bar(f"eval ({split})") as progress:
                task = progress.add_task("eval", total=None)

                def on_progress(label: str, done: int, total: int) -> None:
                    progress.update(task, description=label, completed=done, total=total)

                def on_epoch(name: str, record: dict[str, float]) -> None:
                    progress.update(task, description=f"{name} epoch {int(record['epoch'])} "
                                    f"valid NDCG@10 {record.get('valid_ndcg10', 0):.4f}")

                try:
                    report = run_suite(log, split, names, conn=conn,
                                       config=TrainConfig(epochs=epochs, dim=dim),
                                       exclude_seen=exclude_seen,
                                       test_fraction=test_fraction, test_days=test_days,
                                       progress=on_progress, on_epoch=on_epoch)
                except ValueError as exc:
                    fail(str(exc))
            keep = ("method", "target", "HR@10", "NDCG@10", "MRR@10", "Precision@10",
                    "Recall@10", "AUC", "instances")
            rows = [{k: r[k] for k in keep if k in r} for r in report["results"]]
            groups = report["breakdown"]
            run.metrics = {"split": report["split"], "description": report["description"],
                           "params": report["params"], "exclude_seen": exclude_seen,
                           "results": rows, "breakdown": groups, "rows_read": len(log)}
    except Skipped:
        fail("another `recsys-db eval` is running on this database")
    out.print(report["description"])
    out.print(format_table(report["results"]), soft_wrap=True)
    if breakdown:
        out.print("\nBy history length (events before the target) and target kind (repeat: "
                  "already in the history):")
        out.print(format_table(groups), soft_wrap=True)
    if as_json:
        print(json.dumps({"split": report["split"], "params": report["params"],
                          "results": rows, "breakdown": groups}))
