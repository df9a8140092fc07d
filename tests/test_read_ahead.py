"""`read_ahead`: the bulk load's reader thread (recsys_db/ingest/read_ahead.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from recsys_db.ingest.read_ahead import read_ahead


def test_yields_everything_in_order_and_reads_no_further_than_asked() -> None:
    read: list[int] = []
    released = threading.Event()

    def source() -> Iterator[int]:
        for n in range(10):
            read.append(n)
            if n == 5:
                released.wait(5)
            yield n

    items = read_ahead(source(), ahead=2)
    assert next(items) == 0
    threading.Event().wait(0.3)
    assert len(read) <= 1 + 2 + 1  # the one taken, two buffered, one waiting to be put
    released.set()
    assert list(items) == list(range(1, 10))


def test_the_readers_error_comes_where_its_item_would_have() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise ValueError("line 2: broken")

    items = read_ahead(source(), ahead=4)
    assert next(items) == 1
    with pytest.raises(ValueError, match="line 2: broken"):
        next(items)


def test_closing_stops_the_reader_thread() -> None:
    def endless() -> Iterator[int]:
        n = 0
        while True:
            n += 1
            yield n

    before = {t.ident for t in threading.enumerate()}
    items = read_ahead(endless(), ahead=3)
    assert next(items) == 1
    items.close()
    assert not [t for t in threading.enumerate()
                if t.name == "recsys-read-ahead" and t.ident not in before]
    with pytest.raises(ValueError, match="ahead"):
        next(read_ahead(endless(), ahead=0))
