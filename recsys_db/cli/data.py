"""`recsys-db migrate | ingest | generate | stats`: the schema and the events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recsys_db.cli.common import JsonOption, bar, fail, out, report


def register(app: typer.Typer) -> None:
    for command in (migrate, ingest, generate, stats):
        app.command()(command)


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
    as_json: JsonOption = False,
) -> None:
    """Load events from a file (COPY + one set-based insert, in one transaction)."""
    from recsys_db.ingest import load_events

    mapping = {}
    for item in map_ or []:
        field, _, column = item.partition("=")
        if not column:
            fail(f"--map expects FIELD=COLUMN, got {item!r}")
        mapping[field.strip()] = column.strip()
    with bar(f"loading {path.name}", bytes_=True) as progress:
        task = progress.add_task(f"loading {path.name}", total=None)
        result = load_events(
            path, format=format, on_error=on_error, mapping=mapping or None,
            default_behavior=behavior,
            progress=lambda done, total: progress.update(task, completed=done, total=total))
    report(result, as_json,
           f"{result.source}: {result.rows_read:,} rows read, {result.loaded:,} events loaded, "
           f"{result.duplicates:,} duplicates skipped, {result.rejected:,} rejected, "
           f"{result.forgotten:,} of forgotten users skipped; "
           f"new: {result.new_users:,} users, {result.new_items:,} items, "
           f"{result.new_categories:,} categories ({result.seconds:.1f} s)")


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
        fail(str(exc))
    out.print(f"wrote {stats_.rows:,} events of {stats_.users:,} users, {stats_.items_used:,} "
              f"items, {stats_.categories_used:,} categories to {out_path} "
              f"({stats_.seconds:.1f} s)")


def stats(as_json: JsonOption = False) -> None:
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
