"""SQL lives in files, and each piece in exactly one of them:

* `sql/schema.sql`: the tables, indexes and reference rows of the current revision;
* `sql/functions/NAME.sql`: the current body of every database function, one file per job
  (`recommend.sql`, `candidate_query.sql`, ...), written `CREATE OR REPLACE` so that applying a
  file again is harmless; a migration that changes a function re-applies its file;
* `sql/vector_search_path.sql`: the search_path of the functions that use pgvector (applied
  after any file of sql/functions/);
* `sql/grants.sql`: the application role's privileges (re-applied after a function is
  re-created);
* `sql/upgrades/NNNN_*.sql`: what a revision changes besides functions (new columns, settings);
* named query blocks (`-- name: NAME`) in the other files of `sql/`, for the Python code.

`queries(FILE)` returns a file's named blocks as a dict. Nothing here formats user input into
SQL: values always travel as bind parameters.
"""

from __future__ import annotations

import functools
import re

from recsys_db.config import SQL_DIR

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)

# Every file of sql/functions/, in an order in which each one's dependencies exist already
# (a LANGUAGE sql body is checked when it is created: interest_drift needs interest_profile).
FUNCTION_FILES = (
    "check_k", "event_rules", "forgotten", "entity_keys", "events_partition", "track_event",
    "bulk_load",
    "events_notify", "category_transitions", "interest_profile", "interest_drift",
    "about_to_migrate", "item_stats", "category_embeddings", "drop_model_version",
    "forget_user", "hnsw",
    "ranker_feature_names", "candidate_query", "candidate_features", "rank_candidates",
    "install_serving", "recommend", "similar_items", "recommend_for_session",
    "item_catalog", "exclusions", "precompute_candidates",
)


def read(name: str) -> str:
    """Text of `sql/NAME` (NAME may name a sub-folder: `functions/recommend.sql`)."""
    path = SQL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"SQL file not found: {path}")
    return path.read_text(encoding="utf-8")


@functools.cache
def queries(name: str) -> dict[str, str]:
    """Named blocks of `sql/NAME` -> {block name: SQL text}."""
    text = read(name)
    parts = _BLOCK.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def apply(connection: object, name: str) -> None:
    """Run `sql/NAME` (several statements) on a SQLAlchemy connection, inside its transaction.

    The text goes to psycopg with no parameters, so `%` in format() calls stays literal.
    """
    driver = connection.connection.driver_connection  # type: ignore[attr-defined]
    driver.execute(read(name))


def apply_functions(connection: object, *names: str) -> None:
    """(Re)create the functions of `sql/functions/NAME.sql` for each of `names`."""
    unknown = [n for n in names if n not in FUNCTION_FILES]
    if unknown:
        raise LookupError(f"no sql/functions/ file named {unknown}")
    for name in names:
        apply(connection, f"functions/{name}.sql")
    apply(connection, "vector_search_path.sql")  # the files reset it


def install_serving(connection: object) -> None:
    """Generate the serving functions from the current candidate query and active versions."""
    connection.exec_driver_sql("SELECT recsys.install_serving()")  # type: ignore[attr-defined]


def apply_grants(connection: object, role: str | None = None) -> None:
    """Apply `sql/grants.sql` for the application role `role`, or the one recorded in
    recsys.meta at install time when `role` is None."""
    connection.exec_driver_sql(  # type: ignore[attr-defined]
        "SELECT set_config('recsys.app_role', coalesce(%(role)s, (SELECT value #>> '{}' "
        "FROM recsys.meta WHERE key = 'app_role'), 'recsys_app'), true)", {"role": role})
    apply(connection, "grants.sql")


def install_schema(connection: object, role: str) -> None:
    """The current schema on an empty database (with pgvector installed): tables, every
    function, the generated serving functions and the application role `role`'s grants."""
    apply(connection, "schema.sql")
    apply_functions(connection, *FUNCTION_FILES)
    install_serving(connection)
    apply_grants(connection, role)
