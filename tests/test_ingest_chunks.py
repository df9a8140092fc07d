"""Loads larger than one chunk (ingest/load.py CHUNK_ROWS): staged, judged and stored chunk by
chunk in one transaction - same counts as one chunk, all or nothing in reject mode."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from recsys_db.errors import IngestError
from recsys_db.ingest import load, load_events, readers

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
