"""`recsys-db report | doctor`: pictures of the system, and what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recsys_db.cli.common import JsonOption, bar, fail, out


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(doctor)


def report(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"),
    user: Annotated[list[str] | None, typer.Option(
        "--user", help="User whose interest timeline to chart (repeatable; default: the 3 "
                       "most active).")] = None,
    bench_dir: Annotated[Path | None, typer.Option(
        help="Where bench/recommend.py left recommend.json (default $RECSYS_HOME/bench).")
    ] = None,
    as_json: JsonOption = False,
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
            fail(str(exc))
    result = {"path": str(summary.path.resolve()), "sections": summary.sections,
              "images": summary.images, "users": summary.users,
              "seconds": round(time.perf_counter() - t0, 1)}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"wrote {result['path']} ({summary.images} charts; users "
                  f"{', '.join(summary.users) or 'none'}; {result['seconds']} s)", soft_wrap=True)


def doctor(as_json: JsonOption = False) -> None:
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
