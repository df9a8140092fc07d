"""`recsys-db replica start|stop|status|url`: a hot standby of the embedded server."""

from __future__ import annotations

from typing import Annotated

import typer

from recsys_db import config
from recsys_db.cli.common import JsonOption, fail, out, report

replica_app = typer.Typer(
    help="A hot standby of the embedded server (streaming replication) that serves the read "
         "functions: recommend, similar_items, recommend_for_session, interest_profile, "
         "interest_drift.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(replica_app, name="replica")


def _embedded_only() -> None:
    if config.database_url_from_env():
        fail(f"{config.DATABASE_URL_ENV} points at an external server: `recsys-db replica` "
             "manages a standby of the embedded server only; use your platform's read "
             f"replicas and set {config.REPLICA_URL_ENV} (README: Read replicas)")


def _describe(st: object) -> str:
    from recsys_db.replica import ReplicaStatus

    assert isinstance(st, ReplicaStatus)
    if not st.running:
        kept = (f"stopped; its data is kept in {st.pgdata}"
                + (f" and its slot keeps {st.retained_wal_bytes:,} bytes of WAL on the primary"
                   if st.retained_wal_bytes is not None else "")
                + " (`recsys-db replica stop --remove` deletes both)") if st.exists else \
            "none (`recsys-db replica start` clones the embedded server)"
        return f"standby: {kept}"
    lag = ("not connected to the primary" if not st.streaming else
           f"{st.replay_lag_bytes:,} bytes behind"
           + (f", replay lag {st.replay_lag_ms:.1f} ms" if st.replay_lag_ms is not None else ""))
    return (f"standby: running (pid {st.pid}, port {st.port}), "
            f"{'read-only hot standby' if st.in_recovery else 'NOT in recovery'}; {lag}\n"
            f"url: {st.url}\ndata directory: {st.pgdata}")


@replica_app.command("start")
def replica_start(
    port: Annotated[int | None, typer.Option(
        help="Port of its Unix socket (default: 5433, or the one it was created with).")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Discard an existing standby and clone the primary again.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start the standby, cloning the running embedded server first (pg_basebackup)."""
    from recsys_db import replica

    _embedded_only()
    st = replica.start(port=port, fresh=fresh)
    report(st, as_json, _describe(st))


@replica_app.command("stop")
def replica_stop(
    remove: Annotated[bool, typer.Option(
        "--remove", help="Also delete its data and drop its replication slot on the primary.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Stop the standby (its data is kept for the next start unless --remove)."""
    from recsys_db import replica

    was_running = replica.stop(remove=remove)
    if as_json:
        import json

        print(json.dumps({"was_running": was_running, "removed": remove}))
        return
    out.print(("stopped" if was_running else "was not running")
              + ("; data and replication slot removed" if remove else ""))


@replica_app.command("status")
def replica_status(as_json: JsonOption = False) -> None:
    """Whether the standby runs, its URL, and how far its replay is behind the primary."""
    from recsys_db import replica

    st = replica.status()
    report(st, as_json, _describe(st))


@replica_app.command("url")
def replica_url() -> None:
    """Print the standby's connection URL (libpq form, usable with psql and pgbench)."""
    from recsys_db import replica

    out.print(replica.standby_url(), soft_wrap=True)
