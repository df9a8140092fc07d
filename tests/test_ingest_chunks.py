"""Loads larger than one chunk (ingest/load.py CHUNK_ROWS): staged, judged and stored chunk by
chunk in one transaction - same counts as one chunk, all or nothing in reject mode."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from recsys_db.errors import IngestError
from recsys_db.ingest import load, load_events, load_items, readers

HEADER = "user_id,item_id,category_id,behavior,ts\n"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "BLOCK_BYTES", 64)  # a batch every line or two
    monkeypatch.setattr(load, "CHUNK_ROWS", 3)  # a chunk every few batches


def lines(n: int, start: int = 0) -> str:
    return "".join(f"{u % 4 + 1},{100 + u % 7},{u % 3},pv,{1511544070 + u}\n"
                   for u in range(start, start + n))


def counts(conn: psycopg.Connection) -> tuple[int, int, int, int]:
    return conn.execute("SELECT (SELECT count(*) FROM recsys.events), "
                        "(SELECT count(*) FROM recsys.users), (SELECT count(*) FROM recsys.items),"
                        " (SELECT count(*) FROM recsys.rejected_events)").fetchone()


def test_chunked_load_counts_like_one_load(db_url, conn, tmp_path: Path, small_chunks,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + lines(30) + lines(5))  # the last 5 repeat rows of the first chunk
    chunks: list[int] = []
    stage = load._stage
    monkeypatch.setattr(load, "_stage", lambda *a: chunks.append(1) or stage(*a))
    result = load_events(path)
    assert len(chunks) >= 5
    assert (result.rows_read, result.loaded, result.duplicates) == (35, 30, 5)
    assert (result.new_users, result.new_items, result.new_categories) == (4, 7, 3)
    assert counts(conn) == (30, 4, 7, 0)


def test_bad_row_in_a_later_chunk_rolls_back_every_chunk(db_url, conn, tmp_path: Path,
                                                         small_chunks) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + lines(30) + "1,100,7,click,1511544070\n" + lines(3, 40))
    with pytest.raises(IngestError, match=r"line 32: unknown behavior 'click'"):
        load_events(path)
    assert counts(conn) == (0, 0, 0, 0)


def test_quarantine_across_chunks(db_url, conn, tmp_path: Path, small_chunks) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + "1,100,7,click,1511544070\n" + lines(20)
                    + "2,100,7,pv,yesterday\n" + lines(4, 50))
    result = load_events(path, on_error="quarantine")
    assert (result.loaded, result.rejected) == (24, 2)
    assert [r[0] for r in conn.execute(
        "SELECT line_no FROM recsys.rejected_events ORDER BY 1")] == [2, 23]


def _partitions(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'recsys.events'::regclass ORDER BY 1")]


def test_a_load_creates_the_months_it_has_events_in_and_no_others(db_url, conn,
                                                                   tmp_path: Path) -> None:
    """Months are UTC's whatever the loading session's TimeZone; a month between the load's
    first and last event with no event of its own gets no partition."""
    path = tmp_path / "e.csv"
    # 2024-01-31 23:30 UTC (still January in UTC, February in Asia/Tokyo), 2024-03-01 00:00
    # UTC (February in America/New_York), 2024-04-15; nothing in February UTC
    path.write_text(HEADER + "1,100,7,pv,1706743800\n2,100,7,pv,1709251200\n"
                    "3,101,7,pv,1713139200\n")
    with psycopg.connect(db_url) as other:
        other.execute("ALTER DATABASE " + other.info.dbname + " SET timezone = 'Asia/Tokyo'")
        other.commit()
    assert load_events(path).loaded == 3
    assert _partitions(conn) == ["events_2024m01", "events_2024m03", "events_2024m04",
                                 "events_default"]
    assert conn.execute("SELECT count(*) FROM recsys.events_default").fetchone()[0] == 0


def test_duplicates_in_the_load_and_already_stored_are_skipped_at_any_place(
        db_url, conn, tmp_path: Path) -> None:
    """The plain INSERT of new events fails on the first duplicate wherever it is; the load
    then stores exactly the new events (load_checked's ON CONFLICT path)."""
    first = tmp_path / "a.csv"
    first.write_text(HEADER + lines(10, 100))
    assert load_events(first).loaded == 10
    again = tmp_path / "b.csv"
    # new rows, then one already stored, then a row twice in this load, then new rows
    again.write_text(HEADER + lines(20) + lines(1, 105) + lines(1, 30) + lines(1, 30)
                     + lines(5, 40))
    result = load_events(again)
    assert (result.rows_read, result.loaded, result.duplicates) == (28, 26, 2)
    assert conn.execute("SELECT count(*) FROM recsys.events").fetchone()[0] == 36


def _load_past_an_open_writer(conn: psycopg.Connection, writer: psycopg.Connection,
                              path: Path) -> load.LoadResult:
    """`load_events(path)` in a thread; checks it waits for `writer`'s open transaction,
    commits that, and returns the load's result."""
    results: list = []
    loading = threading.Thread(target=lambda: results.append(load_events(path)), daemon=True)
    loading.start()
    try:
        deadline = 50
        while deadline and not conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'transactionid'").fetchone()[0]:
            deadline -= 1
            threading.Event().wait(0.1)
        assert deadline, "the load never waited for the concurrent writer"
    finally:
        writer.commit()
        writer.close()
        loading.join(60)
    assert len(results) == 1, "the load failed (see the thread's traceback above)"
    return results[0]


def test_an_event_a_concurrent_writer_commits_during_a_load_is_stored_once(
        db_url, conn, tmp_path: Path) -> None:
    """A load that meets an event another transaction is inserting waits for it; after that
    commits the load skips it and keeps every other event - nothing lost, nothing twice."""

    known = tmp_path / "known.csv"  # its users, items and categories exist already, so the
    known.write_text(HEADER + lines(7, 100))  # load waits on the event itself
    load_events(known)
    path = tmp_path / "e.csv"
    path.write_text(HEADER + lines(50))
    writer = psycopg.connect(db_url)
    # the 26th line's event, tracked by another client that has not committed yet
    writer.execute("SELECT recsys.track_event('2', '104', 'pv', to_timestamp(1511544095), '1')")
    result = _load_past_an_open_writer(conn, writer, path)
    assert (result.loaded, result.duplicates) == (49, 1)
    assert conn.execute("SELECT count(*) FROM recsys.events").fetchone()[0] == 57


def _items(conn: psycopg.Connection) -> dict[str, tuple[str | None, int]]:
    return {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT i.item_id, c.category_id, extract(epoch FROM i.first_seen)::bigint "
        "FROM recsys.items i LEFT JOIN recsys.categories c USING (category_key)")}


def test_items_take_their_first_event_and_first_named_category_across_chunks_and_loads(
        db_url, conn, tmp_path: Path, small_chunks) -> None:
    """New items get the most frequent category of the first chunk naming them (ties: the
    smallest id) and their earliest event; stored items move first_seen only earlier and get a
    category only when they have none; the item keys follow first appearance."""
    first = tmp_path / "a.csv"
    first.write_text(HEADER + "1,a,9,pv,1511544100\n1,a,8,pv,1511544200\n"  # tie: 8
                     "1,b,,pv,1511544300\n1,c,5,pv,1511544400\n"  # b: no category
                     "2,c,5,pv,1511544500\n2,c,6,pv,1511544050\n"  # c: 5, first 050
                     "2,a,7,pv,1511544000\n2,d,4,pv,1511544600\n")  # a: earlier, later chunk
    assert load_events(first).new_items == 4
    assert _items(conn) == {"a": ("8", 1511544000), "b": (None, 1511544300),
                            "c": ("5", 1511544050), "d": ("4", 1511544600)}
    assert [r[0] for r in conn.execute("SELECT item_id FROM recsys.items ORDER BY item_key")] \
        == ["a", "b", "c", "d"]
    load_items(pd.DataFrame({"item_id": ["listed"]}))  # a catalog item: no event, no category
    second = tmp_path / "b.csv"
    second.write_text(HEADER + "3,b,3,pv,1511545000\n3,b,3,pv,1511545001\n"  # b gets 3
                      "3,a,2,pv,1511543000\n3,c,2,pv,1511549000\n"  # a earlier, c later
                      "3,e,1,pv,1511540000\n3,listed,2,pv,1511542000\n")
    result = load_events(second)
    assert (result.loaded, result.new_items) == (6, 1)
    assert _items(conn) == {"a": ("8", 1511543000), "b": ("3", 1511544300),
                            "c": ("5", 1511544050), "d": ("4", 1511544600),
                            "e": ("1", 1511540000), "listed": ("2", 1511542000)}


def test_an_item_named_mostly_without_a_category_gets_none_until_a_later_load_names_one(
        db_url, conn, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text(HEADER + "1,f,,pv,1511541000\n1,f,,pv,1511541001\n1,f,2,pv,1511541002\n")
    assert load_events(first).new_items == 1
    assert _items(conn) == {"f": (None, 1511541000)}
    second = tmp_path / "b.csv"
    second.write_text(HEADER + "2,f,3,pv,1511549000\n")
    assert load_events(second).new_items == 0
    assert _items(conn) == {"f": ("3", 1511541000)}


def test_an_item_a_concurrent_writer_stores_during_a_load_is_stored_once(
        db_url, conn, tmp_path: Path) -> None:
    """The load's plain INSERT of new items meets an item another transaction is storing: it
    waits, then the ON CONFLICT upsert keeps that item row (first_seen the earlier one) and
    every event of the load."""

    known = tmp_path / "known.csv"  # its users and categories exist already, so the load
    known.write_text(HEADER + lines(7, 100))  # waits on the item alone
    load_events(known)
    path = tmp_path / "e.csv"
    path.write_text(HEADER + lines(20) + "3,new-item,1,pv,1511540000\n")
    writer = psycopg.connect(db_url)
    writer.execute("SELECT recsys.track_event('2', 'new-item', 'pv', to_timestamp(1511541000), "
                   "'1')")
    result = _load_past_an_open_writer(conn, writer, path)
    assert (result.loaded, result.duplicates, result.new_items) == (21, 0, 0)
    assert conn.execute("SELECT count(*) FROM recsys.items").fetchone()[0] == 8
    assert _items(conn)["new-item"] == ("1", 1511540000)
    assert conn.execute("SELECT count(*) FROM recsys.events").fetchone()[0] == 29
