"""`recsys-db db ...`: the embedded PostgreSQL server."""

from __future__ import annotations

import typer

from recsys_db import config, embedded
from recsys_db.cli.common import out

db_app = typer.Typer(
    help="The embedded PostgreSQL server (used when RECSYS_DATABASE_URL is unset).",
    no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


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
