"""Forget users: the Python door of `recsys.forget_users` (sql/functions/forget_user.sql).

    from recsys_db.forget import forget_users
    result = forget_users(["user-42", "user-43"])

One transaction removes the users' events, quarantined rows, states and users rows, the items
only they touched, the inactive model versions built before the forget, and records a tombstone
per id (its sha256, never the id) that every event door honours. After the commit the training
checkpoints under $RECSYS_HOME/checkpoints are deleted: they are keyed by a fingerprint of the
whole training log, so which of them saw a user cannot be told without loading each; deleting
them all costs only a restart of an interrupted training from its first epoch. The active
model versions keep what they learnt from the users until the jobs rebuild them; `recsys-db
doctor` counts the forgotten users awaiting that (`awaiting_retraining`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from recsys_db import db
from recsys_db.config import checkpoint_dir
from recsys_db.errors import RecsysError
from recsys_db.sqlfiles import queries


class ForgetError(RecsysError):
    """The ids given cannot be forgotten as they are (none, blank, too long)."""


@dataclass(frozen=True)
class ForgetResult:
    users: int  # distinct ids given (after trimming)
    known_users: int  # of them, users recsys-db had stored
    events: int
    rejected_events: int
    user_rows: int  # rows of other per-user tables (user_states of every version, ...)
    items: int  # items only these users had touched, removed with every row keyed by them
    versions: int  # inactive model versions built before the forget, dropped
    checkpoint_files: int  # files deleted under $RECSYS_HOME/checkpoints

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def forget_users(user_ids: Iterable[str], url: str | None = None,
                 home: Path | None = None) -> ForgetResult:
    """Forget `user_ids` (see the module doc) in one transaction; raises ForgetError for a
    blank or over-long id (then nothing changes)."""
    ids = [str(u) for u in user_ids]
    if not ids:
        raise ForgetError("no user id given")
    with db.connect(url) as conn:
        try:
            row = conn.execute(queries("forget.sql")["forget_users"], {"ids": ids}).fetchone()
        except psycopg.errors.InvalidParameterValue as exc:
            raise ForgetError(exc.diag.message_primary or str(exc)) from exc
        conn.commit()
    assert row is not None
    files = delete_checkpoints(home)
    return ForgetResult(*(int(v) for v in row), checkpoint_files=files)


def delete_checkpoints(home: Path | None = None) -> int:
    """Delete every file under `home`/checkpoints (default $RECSYS_HOME); returns how many."""
    folder = checkpoint_dir(home)
    if not folder.is_dir():
        return 0
    count = sum(1 for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    shutil.rmtree(folder)
    return count


def awaiting_retraining(conn: psycopg.Connection) -> tuple[int, int, list[str]]:
    """(forgotten users, of them those whose data derived tables may still hold, what must be
    rebuilt: the active versions built before a forget, as 'kind vN', and
    'category transitions' when refresh-transitions has not run since)."""
    forgotten, awaiting, stale = conn.execute(queries("forget.sql")["awaiting"]).fetchone()
    return int(forgotten), int(awaiting), list(stale or [])
