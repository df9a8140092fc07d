"""recsys.track_event: the SQL door applications call, with the same rules as bulk loads."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

TRACK = "SELECT recsys.track_event(%s, %s, %s, %s, %s)"


def test_track_event_stores_creates_and_dedupes(conn):
    ts = datetime(2017, 11, 25, 10, tzinfo=UTC)
    first = conn.execute(TRACK, ("u1", "i1", "pv", ts, "c1")).fetchone()[0]
    assert first is not None
    assert conn.execute(TRACK, ("u1", "i1", "pv", ts, "c1")).fetchone()[0] is None  # duplicate
    conn.execute("SELECT recsys.track_event(user_id => 'u1', item_id => 'i2', behavior => 'buy')")
    assert conn.execute("SELECT count(*) FROM recsys.events").fetchone()[0] == 2
    row = conn.execute("SELECT c.category_id FROM recsys.items i JOIN recsys.categories c "
                       "USING (category_key) WHERE item_id = 'i1'").fetchone()
    assert row == ("c1",)
    # A later event names the category of an item first seen without one.
    conn.execute(TRACK, ("u2", "i2", "pv", ts, "c9"))
    assert conn.execute("SELECT category_key IS NOT NULL FROM recsys.items WHERE item_id = 'i2'"
                        ).fetchone()[0]


@pytest.mark.parametrize(("args", "message"), [
    ((None, "i", "pv"), "missing user_id"),
    (("u", "  ", "pv"), "missing item_id"),
    (("u", "i", "click"), "unknown behavior 'click'"),
    (("u" * 257, "i", "pv"), "user_id longer than 256 characters"),
])
def test_track_event_rejects_bad_arguments(conn, args, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute("SELECT recsys.track_event(%s, %s, %s)", args)
    assert conn.execute("SELECT count(*) FROM recsys.events").fetchone()[0] == 0


def test_track_event_out_of_range_timestamp(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="out of range"):
        conn.execute(TRACK, ("u", "i", "pv", datetime(1980, 1, 1, tzinfo=UTC), None))


def test_new_month_gets_a_partition_and_default_rows_move(conn):
    # A row that reached the default partition (e.g. inserted directly) moves when its month's
    # partition is created, so partition creation never fails.
    conn.execute("INSERT INTO recsys.events (user_key, item_key, behavior_key, ts) "
                 "VALUES (1, 1, 1, '2031-05-03+00')")
    assert conn.execute("SELECT count(*) FROM recsys.events_default").fetchone()[0] == 1
    conn.execute(TRACK, ("u", "i", "pv", datetime(2031, 5, 20, tzinfo=UTC), None))
    assert conn.execute("SELECT count(*) FROM recsys.events_default").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM recsys.events_2031m05").fetchone()[0] == 2
