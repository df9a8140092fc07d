"""Ingestion: the Taobao sample, bad input with exact messages, quarantine, other formats."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

from recsys_db.cli import app
from recsys_db.errors import IngestError
from recsys_db.ingest import load_events

HEADER = "user_id,item_id,category_id,behavior,ts\n"
GOOD = "1,100,7,pv,1511544070\n1,101,7,cart,1511544080\n2,100,7,buy,1511544090\n"


def counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = ("events", "users", "items", "categories", "rejected_events")
    return {t: conn.execute(f"SELECT count(*) FROM recsys.{t}").fetchone()[0] for t in tables}


EMPTY = {"events": 0, "users": 0, "items": 0, "categories": 0, "rejected_events": 0}


def write(tmp_path: Path, body: str | bytes, name: str = "events.csv") -> Path:
    path = tmp_path / name
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8")
    else:
        path.write_bytes(body)
    return path


def test_taobao_sample_loads_exact_counts_and_reload_adds_nothing(db_url, conn, taobao_events):
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", str(taobao_events), "--format", "taobao"])
    assert first.exit_code == 0, first.output
    assert "84,287 events loaded" in first.output
    assert counts(conn) == {"events": 84_287, "users": 814, "items": 55_233,
                            "categories": 2_911, "rejected_events": 0}
    again = runner.invoke(app, ["ingest", str(taobao_events), "--format", "taobao", "--json"])
    assert again.exit_code == 0, again.output
    assert '"loaded": 0' in again.output and '"duplicates": 84287' in again.output
    assert counts(conn)["events"] == 84_287
    # The item seen under two categories keeps its majority category (README of the sample).
    cat = conn.execute("SELECT c.category_id FROM recsys.items i JOIN recsys.categories c "
                       "USING (category_key) WHERE i.item_id = '2633450'").fetchone()[0]
    assert cat == "2344159"
    # Monthly partitions were created for every month present, nothing fell to the default.
    parts = {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'recsys.events'::regclass")}
    assert {"events_2017m09", "events_2017m11", "events_2017m12"} <= parts
    assert conn.execute("SELECT count(*) FROM recsys.events_default").fetchone()[0] == 0


BAD_CASES = [
    ("missing user", ",100,7,pv,1511544070\n", "missing user_id"),
    ("missing item", "1, ,7,pv,1511544070\n", "missing item_id"),
    ("unknown behavior", "1,100,7,click,1511544070\n", "unknown behavior 'click'"),
    ("unparseable ts", "1,100,7,pv,yesterday\n", "unparseable timestamp 'yesterday'"),
    ("missing ts", "1,100,7,pv,\n", "missing timestamp"),
    ("out of range ts", "1,100,7,pv,99999999999\n", "out of range"),
    ("negative ts", "1,100,7,pv,-5\n", "out of range"),
    ("too many columns", "1,100,7,pv,1511544070,9\n", "expected 5 columns, found 6"),
    ("too few columns", "1,100,pv,1511544070\n", "expected 5 columns, found 4"),
    ("overlong user", "u" * 300 + ",100,7,pv,1511544070\n", "user_id longer than 256"),
    ("overlong item", "1," + "i" * 257 + ",7,pv,1511544070\n", "item_id longer than 256"),
]


@pytest.mark.parametrize(("case", "line", "reason"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_row_rejects_whole_load_naming_line(db_url, conn, tmp_path, case, line, reason):
    path = write(tmp_path, HEADER + GOOD + line + GOOD)
    with pytest.raises(IngestError) as err:
        load_events(path)
    message = str(err.value)
    assert message.startswith("events.csv: line 5: "), message
    assert reason in message
    assert "nothing was loaded" in message
    assert err.value.problems[0][0] == 5
    assert counts(conn) == EMPTY


def test_invalid_utf8_names_line_and_byte(db_url, conn, tmp_path):
    body = (HEADER + GOOD).encode() + b"1,10\xff0,7,pv,1511544070\n"
    with pytest.raises(IngestError, match=r"line 5: invalid UTF-8 at byte 5"):
        load_events(write(tmp_path, body))
    assert counts(conn) == EMPTY


def test_cli_reports_error_and_exit_code(db_url, conn, tmp_path):
    path = write(tmp_path, HEADER + "1,100,7,click,1511544070\n")
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, IngestError)
    assert "line 2: unknown behavior 'click'" in str(result.exception)
    assert counts(conn) == EMPTY


def test_quarantine_loads_good_rows_and_keeps_bad_ones(db_url, conn, tmp_path):
    lines = [line for _, line, _ in BAD_CASES]
    path = write(tmp_path, HEADER + GOOD + "".join(lines))
    result = CliRunner().invoke(app, ["ingest", str(path), "--on-error", "quarantine"])
    assert result.exit_code == 0, result.output
    assert "3 events loaded" in result.output and f"{len(lines)} rejected" in result.output
    assert counts(conn)["events"] == 3
    rows = conn.execute("SELECT line_no, reason, raw FROM recsys.rejected_events "
                        "ORDER BY line_no").fetchall()
    assert [r[0] for r in rows] == list(range(5, 5 + len(lines)))
    for (_, _, reason), (_, got, raw) in zip(BAD_CASES, rows, strict=True):
        assert reason in got
        assert raw
    assert rows[0][2] == ",100,7,pv,1511544070"


def test_sql_looking_ids_are_just_ids(db_url, conn):
    nasty = "1'); DROP TABLE recsys.events; --"
    load_events([(nasty, "x\tquote\"\\back", "c;1", "pv", 1511544070)])
    assert conn.execute("SELECT user_id FROM recsys.users").fetchone()[0] == nasty
    assert conn.execute("SELECT item_id FROM recsys.items").fetchone()[0] == "x\tquote\"\\back"
    assert counts(conn)["events"] == 1


def test_dataframe_and_row_iterables(db_url, conn):
    frame = pd.DataFrame({"user_id": [1, 2], "item_id": [10, 11], "category_id": [5, 5],
                          "behavior": ["pv", "fav"],
                          "ts": pd.to_datetime(["2017-11-25 10:00", "2017-11-25 11:00"], utc=True)})
    assert load_events(frame).loaded == 2
    rows = [{"user_id": "3", "item_id": "12", "behavior": "buy",
             "ts": datetime(2017, 11, 26, tzinfo=UTC)},
            ("4", "13", None, "cart", "2017-11-27T08:00:00Z")]
    result = load_events(rows)
    assert (result.loaded, result.new_users, result.new_items) == (2, 2, 2)
    ts = conn.execute("SELECT ts FROM recsys.events e JOIN recsys.users u USING (user_key) "
                      "WHERE u.user_id = '4'").fetchone()[0]
    assert ts == datetime(2017, 11, 27, 8, tzinfo=UTC)
    # Row numbers name the bad row of an iterable too.
    with pytest.raises(IngestError, match=r"line 2: unknown behavior 'like'"):
        load_events([("5", "1", None, "pv", 1511544070), ("5", "2", None, "like", 1511544070)])


def test_movielens_and_recbole_and_mapped_csv(db_url, conn, tmp_path):
    udata = write(tmp_path, "196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.data")
    assert load_events(udata, format="movielens").loaded == 2
    inter = write(tmp_path, "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                            "7\t8\t4.0\t881250950.0\n", "ml.inter")
    assert load_events(inter, format="movielens").loaded == 1
    mapped = write(tmp_path, "customer,sku,when,action\nc1,s1,2017-11-25T10:00:00,fav\n",
                   "shop.csv")
    result = load_events(mapped, format="csv",
                         mapping={"user_id": "customer", "item_id": "sku", "ts": "when",
                                  "behavior": "action"})
    assert result.loaded == 1
    assert conn.execute("SELECT count(*) FROM recsys.events WHERE behavior_key = 1"
                        ).fetchone()[0] == 3  # movielens rows default to pv
    with pytest.raises(IngestError, match="no column for user_id"):
        load_events(write(tmp_path, "a,b\n1,2\n", "x.csv"), format="csv")


def test_parse_epoch_reads_unix_seconds_and_nothing_else(conn) -> None:
    """The digits test (`!~ '[^0-9]'`, revision 0015) accepts what the btrim test before it
    did: the same value or NULL for every input."""
    inputs = ["1511544070", "0", "1", "99999999999", "999999999999", " 1511544070 ",
              "-5", "1511544070.5", "1.123456789", "1.1234567891", "", " ", "abc", "15115x4070",
              "１５１１５４４０７０", "1e9", "+5", "5.", ".5", "12\n", None]
    old = ("CASE WHEN length(t) BETWEEN 1 AND 11 AND btrim(t, '0123456789') = '' "
           "THEN to_timestamp(t::bigint) "
           "WHEN t ~ '^\\s*-?[0-9]{1,11}(\\.[0-9]{1,9})?\\s*$' "
           "THEN to_timestamp(t::double precision) END")
    rows = conn.execute(f"SELECT t, recsys.parse_epoch(t), {old} FROM unnest(%s::text[]) AS t",
                        (inputs,)).fetchall()
    assert [r[1] for r in rows] == [r[2] for r in rows]
    parsed = {r[0]: r[1] for r in rows}
    assert parsed["1511544070"].timestamp() == 1511544070
    assert parsed["1511544070.5"].timestamp() == 1511544070.5
    assert parsed["abc"] is None and parsed["999999999999"] is None and parsed[""] is None
