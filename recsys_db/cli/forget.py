"""`recsys-db forget USER... [--file ids.txt]`: forget users (recsys_db/forget.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsys_db.cli.common import JsonOption, fail, report


def register(app: typer.Typer) -> None:
    app.command()(forget)


def forget(
    users: Annotated[list[str] | None, typer.Argument(help="User ids to forget.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="A file of user ids, one per line (blank lines are skipped).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Forget users: delete their events, quarantined rows, states and items only they
    touched, and keep a tombstone (a hash of the id) so that no load brings them back. The
    next runs of the jobs rebuild models without them (`recsys-db doctor` counts the users
    awaiting that)."""
    from recsys_db.forget import forget_users

    ids = list(users or [])
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {file}: {exc}")
        ids += [line for line in text.splitlines() if line.strip()]
    if not ids:
        fail("give user ids, or --file with one id per line")
    result = forget_users(ids)
    report(result, as_json,
           f"forgot {result.users:,} user(s) ({result.known_users:,} known): "
           f"{result.events:,} events, {result.rejected_events:,} quarantined rows, "
           f"{result.user_rows:,} state rows, {result.items:,} items only they touched, "
           f"{result.versions:,} inactive model versions and {result.checkpoint_files:,} "
           "checkpoint files deleted; the next runs of the jobs rebuild the active models "
           "without them (see recsys-db doctor)")
