"""`recsys-db jobs ... | scheduler | worker | precompute`: running the jobs, the live updater
and the refill of precomputed candidates."""

from __future__ import annotations

import json
import logging
import os
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from recsys_db.cli.common import ConfigOption, JsonOption, bar, console, fail, out
from recsys_db.errors import RecsysError

jobs_app = typer.Typer(help="Run jobs once (cron, Kubernetes CronJobs, Airflow) or list them.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
    app.command()(scheduler)
    app.command()(worker)
    app.command()(precompute)


@jobs_app.command("list")
def jobs_list(config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The jobs, their schedules (from settings) and their last run."""
    from recsys_db.db import connect
    from recsys_db.jobs.catalog import JOBS
    from recsys_db.jobs.runner import last_runs
    from recsys_db.jobs.settings import load_settings

    settings = load_settings(config_file)
    last: dict[str, tuple] = {}
    try:
        with connect() as conn:
            last = last_runs(conn)
    except Exception as exc:  # the list is still useful without a database
        console.print(f"[yellow]no run history ({type(exc).__name__}: {exc})[/]")
    rows = [{"job": j.name, "schedule": settings.schedules.get(j.name) or "off",
             "description": j.description,
             "last_status": last.get(j.name, (None,))[0],
             "last_started": str(last[j.name][1]) if j.name in last else None}
            for j in JOBS.values()]
    if as_json:
        print(json.dumps({"settings": settings.source, "jobs": rows}))
        return
    table = Table("job", "schedule", "last run", "what it does",
                  title=f"jobs (schedules from {settings.source})")
    for r in rows:
        when = f"{r['last_status']} {r['last_started'][:19]}" if r["last_status"] else "never"
        table.add_row(r["job"], r["schedule"], when, r["description"])
    out.print(table)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="Job name (see `recsys-db jobs list`).")],
    encoder: Annotated[str | None, typer.Option(
        help="train-interest: lstm, gru or attention")] = None,
    dim: Annotated[int | None, typer.Option(help="train-interest: state/embedding size")] = None,
    epochs: Annotated[int | None, typer.Option(help="train-interest: maximum epochs")] = None,
    max_len: Annotated[int | None, typer.Option(help="train-interest: training window")] = None,
    seed: Annotated[int | None, typer.Option(help="train-interest: random seed")] = None,
    workers: Annotated[int | None, typer.Option(
        help="train-interest: training processes on this host (DistributedDataParallel); "
             "under torchrun, the ranks torchrun starts")] = None,
    tune: Annotated[str | None, typer.Option(
        "--tune", metavar="MINUTES",
        help="train-interest: first search dim, layers, lr, dropout, batch size, weight decay "
             "and window for MINUTES on validation targets (Optuna), then keep the best "
             "trial's model")] = None,
    retries: Annotated[int, typer.Option(
        help="Retries after a failure, with exponential backoff.")] = 0,
    backoff: Annotated[float | None, typer.Option(
        help="First retry delay in seconds (default from settings).")] = None,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run one job once, recorded in recsys.job_runs (options from the settings' jobs.NAME
    table, overridden by the flags; the activation tolerance from the same settings)."""
    from recsys_db.jobs.catalog import JOBS
    from recsys_db.jobs.runner import run_from_settings
    from recsys_db.jobs.settings import load_settings

    if name not in JOBS:
        fail(f"unknown job {name!r}; known: {', '.join(JOBS)}")
    if os.environ.get("RANK", "0") != "0":  # a torchrun rank other than 0: train, no job
        if name != "train-interest":
            fail(f"only train-interest runs under torchrun, not {name}")
        from recsys_db.interest.distributed import follow_torchrun

        follow_torchrun()
        return
    settings = load_settings(config_file)
    flags = {"encoder": encoder, "dim": dim, "epochs": epochs, "max_len": max_len, "seed": seed,
             "workers": workers}
    given: dict[str, object] = {k: v for k, v in flags.items() if v is not None}
    if tune is not None:
        from recsys_db.interest.tune import check_minutes

        try:
            given["tune_minutes"] = check_minutes(tune)
        except ValueError:
            fail(f"--tune: expected a number of minutes > 0, got {tune!r}")
    if given and name != "train-interest":
        flag_names = ["tune" if k == "tune_minutes" else k.replace("_", "-") for k in given]
        fail(f"--{'/--'.join(flag_names)} only apply to train-interest")
    options = {**settings.job_options.get(name, {}), **given}
    bar_, progress = (interest_progress(options) if name == "train-interest"
                      else (None, None))
    try:
        result = run_from_settings(name, settings, given, progress=progress, retries=retries,
                                   backoff_seconds=backoff)
    except RecsysError:
        raise
    except Exception as exc:  # recorded in recsys.job_runs with its traceback
        fail(f"{name} failed: {type(exc).__name__}: {exc} (details in recsys.job_runs)")
    finally:
        if bar_ is not None:
            bar_.stop()
    result.pop("history", None)
    result.pop("tradeoffs", None)
    tuning = result.pop("tuning", None)
    if tuning and not as_json:  # the trials are in recsys.job_runs.metrics
        result.update(tune_trials=len(tuning["trials"]), tune_best_trial=tuning["best_trial"],
                      tune_best_params=tuning["best_params"])
    elif tuning:
        result["tuning"] = tuning
    if as_json:
        print(json.dumps(result, default=str))
    else:
        out.print(", ".join(f"{k}={v}" for k, v in result.items()))


def interest_progress(options: dict[str, object]) -> tuple[Progress, object]:
    """A started progress bar and the train-interest callbacks that move it."""
    from recsys_db.interest.trainer import TrainProgress

    progress = bar(f"train-interest ({options.get('encoder', 'lstm')})")
    progress.start()
    tuning = "tune_minutes" in options
    task = progress.add_task("epoch 1", total=None)
    epoch = {"n": 1, "metric": "", "trial": "trial 0 " if tuning else ""}

    def on_batch(done: int, total: int, loss: float) -> None:
        progress.update(task, completed=done, total=total,
                        description=f"{epoch['trial']}epoch {epoch['n']} loss {loss:.3f}"
                                    f"{epoch['metric']}")

    def on_epoch(record: dict[str, float]) -> None:
        epoch["n"] = int(record["epoch"]) + 1
        if "valid_ndcg10" in record:
            epoch["metric"] = f" | valid NDCG@10 {record['valid_ndcg10']:.4f}"
        if tuning:  # a line per trial instead
            return
        console.print(f"epoch {int(record['epoch'])}: loss {record['loss']:.4f}"
                      + "".join(f", {k} {v:.4f}" for k, v in record.items()
                                if k.startswith("valid_")))

    def on_trial(record: dict[str, object]) -> None:
        epoch.update(n=1, metric="", trial=f"trial {int(record['number']) + 1} ")
        value = record["value"]
        console.print(
            f"trial {record['number']} {str(record['state']).lower()}: valid NDCG@10 "
            + (f"{value:.4f}" if isinstance(value, float) else "-")
            + f" after {record['epochs']} epoch(s)"
            + (" (stopped at the deadline)" if record.get("stopped_at_deadline") else "")
            + f", {record['seconds']} s; "
            + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in dict(record["params"]).items()),
            markup=False)

    return progress, TrainProgress(on_epoch=on_epoch, on_batch=on_batch,
                                   on_trial=on_trial if tuning else None)


def scheduler(
    config_file: ConfigOption = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
) -> None:
    """Run the jobs on their cron schedules until SIGTERM/Ctrl-C (running jobs finish first)."""
    from recsys_db.jobs.settings import load_settings
    from recsys_db.scheduler import run_scheduler

    settings = load_settings(config_file)
    logging.getLogger("recsys_db").setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    active = {k: v for k, v in settings.schedules.items() if v}
    console.print(f"scheduler: {len(active)} jobs from {settings.source}: "
                  + ", ".join(f"{k} [{v}]" for k, v in active.items()))
    try:
        run_scheduler(settings, stop_after=seconds)
    except ValueError as exc:
        fail(str(exc))
    console.print("scheduler: stopped")


def worker(
    poll: Annotated[float, typer.Option(help="Seconds between polls (besides NOTIFY).")] = 1.0,
    seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
) -> None:
    """Advance user interest states as events arrive (LISTEN/NOTIFY + polling), until stopped."""
    from recsys_db.interest.live import run_worker

    console.print("worker: listening for new events (Ctrl-C to stop)")
    try:
        run_worker(poll_seconds=poll, stop_after=seconds)
    except KeyboardInterrupt:
        console.print("worker: stopped")


def precompute(
    seconds: Annotated[float | None, typer.Option(
        help="Stop after this long (None: until every stale row is refilled).")] = None,
    batch: Annotated[int, typer.Option(help="Users per transaction.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """Refill the precomputed candidates an activation (or a new item) left stale, most recently
    active users first; the worker does the same between events."""
    from recsys_db.db import connect
    from recsys_db.interest.precompute import refill

    try:
        with connect() as conn:
            stats = refill(conn, seconds=seconds, batch=batch)
    except ValueError as exc:
        fail(str(exc))
    figures = {"users": stats.users, "remaining": stats.remaining,
               "seconds": round(stats.seconds, 1)}
    if as_json:
        print(json.dumps(figures))
    else:
        console.print(f"precompute: {stats.users} users in {stats.seconds:.1f} s, "
                      f"{stats.remaining} left")
