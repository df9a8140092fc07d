"""`recsys-db models ...`: the model registry."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from recsys_db.cli.common import JsonOption, out

models_app = typer.Typer(help="The model registry: list, activate, roll back, garbage-collect.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    kind: Annotated[str | None, typer.Option(help="interest, cf or ranker")] = None,
    limit: Annotated[int, typer.Option(help="Newest N versions.")] = 30,
    as_json: JsonOption = False,
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
