"""SQL lives in files: `sql/NNNN_*.sql` (applied by migrations) and named query blocks.

A query file holds blocks that start with a `-- name: NAME` line; `queries(FILE)` returns them as
a dict. Nothing here formats user input into SQL: values always travel as bind parameters.
"""

from __future__ import annotations

import functools
import re

from recsys_db.config import SQL_DIR

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def read(name: str) -> str:
    """Text of `sql/NAME`."""
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


def function_definition(name: str, function: str) -> str:
    """The `CREATE [OR REPLACE] FUNCTION function(...` statement of `sql/NAME`, through its
    closing `$$;`, as CREATE OR REPLACE: how a downgrade restores the previous body of a
    function a later revision replaced, without a second copy of it."""
    text = read(name)
    found = re.search(r"^CREATE (?:OR REPLACE )?FUNCTION " + re.escape(function) + r"\(",
                      text, re.MULTILINE)
    if found is None:
        raise LookupError(f"function {function} is not defined in sql/{name}")
    opening = text.index("$$", found.start())  # the body is dollar-quoted with $$
    end = text.index(";", text.index("$$", opening + 2)) + 1
    return "CREATE OR REPLACE " + text[found.start() + len("CREATE "):end].removeprefix(
        "OR REPLACE ")


def restore_functions(connection: object, name: str, *functions: str) -> None:
    """Re-create `functions` as defined in `sql/NAME` (on a SQLAlchemy connection)."""
    driver = connection.connection.driver_connection  # type: ignore[attr-defined]
    for function in functions:
        driver.execute(function_definition(name, function))


def apply(connection: object, name: str) -> None:
    """Run `sql/NAME` (several statements) on a SQLAlchemy connection, inside its transaction.

    The text goes to psycopg with no parameters, so `%` in format() calls stays literal.
    """
    driver = connection.connection.driver_connection  # type: ignore[attr-defined]
    driver.execute(read(name))
