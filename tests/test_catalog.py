"""The catalog (ingest-items, set_item_active, attribute filters, cold-start vectors),
exclusions (exclude_item, exclude_seen) and reasons that can be checked against the data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from recsys_db.errors import IngestError
from recsys_db.ingest.items import load_items


def _items(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute("SELECT i.item_id, c.category_id, i.attributes, i.active, i.first_seen "
                        "FROM recsys.items i LEFT JOIN recsys.categories c USING (category_key)")
    return {r[0]: r[1:] for r in rows}


def test_catalog_csv_and_dataframe_load_attributes_category_and_active(db_url, tmp_path: Path):
    path = tmp_path / "catalog.csv"
    path.write_text("item_id,category_id,active,brand,price,color\n"
                    "sku-1,shoes,true,acme,19.5,\n"
                    " sku-2 ,shoes,no,zeta,7,red\n"
                    "sku-3,,,acme,,blue\n", encoding="utf-8")
    result = load_items(path)
    assert (result.rows_read, result.new_items, result.updated_items,
            result.new_categories) == (3, 3, 0, 1)
    with psycopg.connect(db_url) as conn:
        items = _items(conn)
    assert items["sku-1"][:3] == ("shoes", {"brand": "acme", "price": 19.5}, True)
    assert items["sku-2"][:3] == ("shoes", {"brand": "zeta", "price": 7, "color": "red"}, False)
    assert items["sku-3"] == (None, {"brand": "acme", "color": "blue"}, True, None)
    # a DataFrame updates: attributes replaced, category and active kept when not given
    frame = pd.DataFrame({"item_id": ["sku-2", "sku-4"], "brand": ["acme", None],
                          "in_stock": [True, False]})
    result = load_items(frame)
    assert (result.new_items, result.updated_items, result.new_categories) == (1, 1, 0)
    with psycopg.connect(db_url) as conn:
        items = _items(conn)
    assert items["sku-2"][:3] == ("shoes", {"brand": "acme", "in_stock": True}, False)
    assert items["sku-4"][:3] == (None, {"in_stock": False}, True)


@pytest.mark.parametrize(("text", "message"), [
    ("item_id,active\nok-1,true\n,true\n", "line 3: missing item_id"),
    ("item_id,active\nok-1,true\nok-2,maybe\n",
     "line 3: active must be true or false, got 'maybe'"),
    ("item_id,brand\nok-1,a\nok-1,b\n", "line 3: item_id repeated (first on line 2)"),
    ("item_id,brand\nok-1,a,extra\n", "line 2: expected 2 columns, found 3"),
    ("sku,brand\nok-1,a\n", "the header needs an item_id column"),
    (f"item_id\n{'x' * 300}\n", "line 2: item_id longer than 256 characters"),
])
def test_bad_catalog_rows_are_named_and_nothing_is_written(db_url, tmp_path: Path, text, message):
    path = tmp_path / "catalog.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IngestError, match=re.escape(message)) as info:
        load_items(path)
    assert "nothing was loaded" in str(info.value)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM recsys.items").fetchone()[0] == 0
    path.write_bytes(b"item_id,brand\nok-1,\xff\n")
    with pytest.raises(IngestError, match="invalid UTF-8"):
        load_items(path)


def test_cli_ingest_items(db_url, tmp_path: Path):
    from typer.testing import CliRunner

    from recsys_db.cli import app

    path = tmp_path / "catalog.csv"
    path.write_text("item_id,category_id,brand\nsku-9,c1,acme\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest-items", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["new_items"] == 1
    path.write_text("item_id,active\nsku-9,perhaps\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest-items", str(path)])
    assert isinstance(result.exception, IngestError)
    assert "active must be true or false" in str(result.exception)


def test_arguments_are_checked(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        for sql, message in [
            ("SELECT recsys.set_item_active('no-such-item', false)",
             "unknown item 'no-such-item'"),
            ("SELECT recsys.set_item_active('1', NULL)", "active must be true or false"),
            ("SELECT recsys.exclude_item('no-such-user', '1')", "unknown user 'no-such-user'"),
            ("SELECT recsys.exclude_item('3', 'no-such-item')", "unknown item"),
            ("SELECT * FROM recsys.recommend('3', filter => '[1]')",
             "filter must be a JSON object"),
        ]:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
                conn.execute(sql)


def _recommend(conn, sql: str, *args) -> list[str]:
    return [r[0] for r in conn.execute(sql, args).fetchall()]


def test_inactive_items_exclusions_and_exclude_seen_in_one_query(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        top = _recommend(conn, "SELECT item_id FROM recsys.recommend('3', 10)")
        similar_to = top[0]
        similar = _recommend(conn, "SELECT similar_item_id FROM recsys.similar_items(%s, 5)",
                             similar_to)
        session = _recommend(conn, "SELECT item_id FROM recsys.recommend_for_session("
                                   "ARRAY['1', '2'], 5)")
        off = {top[1], similar[0], session[0]}
        for item in off:
            assert conn.execute("SELECT recsys.set_item_active(%s, false)", (item,)
                                ).fetchone()[0] is True
        assert conn.execute("SELECT recsys.set_item_active(%s, false)", (top[1],)
                            ).fetchone()[0] is False
        conn.execute("SELECT recsys.exclude_item('3', %s)", (top[2],))
        conn.execute("SELECT recsys.exclude_item('3', %s, until => now() - interval '1 day')",
                     (top[3],))  # expired: applies no more
        after = _recommend(conn, "SELECT item_id FROM recsys.recommend('3', 10)")
        assert len(after) == 10
        assert off.isdisjoint(after) and top[2] not in after and top[3] in after
        assert off.isdisjoint(_recommend(
            conn, "SELECT similar_item_id FROM recsys.similar_items(%s, 5)", similar_to))
        assert len(_recommend(conn, "SELECT item_id FROM recsys.recommend_for_session("
                                    "ARRAY['1', '2'], 5)")) == 5
        assert off.isdisjoint(_recommend(conn, "SELECT item_id FROM recsys.recommend_for_session("
                                               "ARRAY['1', '2'], 50)"))
        seen = set(_recommend(conn, "SELECT DISTINCT i.item_id FROM recsys.events e "
                                    "JOIN recsys.items i USING (item_key) "
                                    "JOIN recsys.users u USING (user_key) WHERE u.user_id = '3'"))
        unseen = _recommend(conn, "SELECT item_id FROM recsys.recommend('3', 10, "
                                  "exclude_seen => true)")
        assert len(unseen) == 10 and seen.isdisjoint(unseen)
        assert top[2] not in unseen and off.isdisjoint(unseen)
        # the old call shape still works, positionally too
        assert len(_recommend(conn, "SELECT item_id FROM recsys.recommend('3', 5, NULL, false)"
                              )) == 5


def test_attribute_filter_is_served_by_the_gin_index(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        before = _recommend(conn, "SELECT item_id FROM recsys.recommend('3', 20)")
        acme = before[1::2]
        for item in acme:
            conn.execute("UPDATE recsys.items SET attributes = '{\"brand\": \"acme\", "
                         "\"price\": 5}' WHERE item_id = %s", (item,))
        rows = _recommend(conn, "SELECT item_id FROM recsys.recommend('3', 5, "
                                "filter => '{\"brand\": \"acme\"}'::jsonb)")
        assert len(rows) == 5 and set(rows) <= set(acme)
        assert not _recommend(conn, "SELECT item_id FROM recsys.recommend('3', 5, "
                                    "filter => '{\"brand\": \"none\"}'::jsonb)")
    from recsys_db.api import exclude_item, recommend, set_item_active
    from recsys_db.db import session_scope

    with session_scope() as session:  # the Python API passes the same arguments
        recs = recommend(session, "3", k=5, filter={"brand": "acme"}, exclude_seen=False)
        assert [r.item_id for r in recs] == rows
        exclude_item(session, "3", rows[0])
        assert set_item_active(session, rows[1], False) is True
        again = [r.item_id for r in recommend(session, "3", k=5, filter={"brand": "acme"})]
        assert rows[0] not in again and rows[1] not in again
    with psycopg.connect(trained, autocommit=True) as conn:
        # the filter's form in rank_candidates, as a generic plan: the GIN index can serve it
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute("PREPARE f(jsonb) AS SELECT m.item_key FROM recsys.items m "
                     "WHERE m.attributes @> $1")
        plan = json.dumps(conn.execute("EXPLAIN (FORMAT JSON) EXECUTE f('{\"brand\": \"acme\"}')"
                                       ).fetchone()[0])
        assert "items_attributes_idx" in plan, plan


def test_catalog_items_without_events_get_a_vector_from_category_and_attributes(trained):
    from recsys_db.interest.train import TrainConfig
    from recsys_db.interest.trainer import train_interest

    with psycopg.connect(trained, autocommit=True) as conn:
        category = conn.execute("SELECT c.category_id FROM recsys.categories c "
                                "ORDER BY category_key LIMIT 1").fetchone()[0]
        conn.execute("UPDATE recsys.items SET attributes = '{\"brand\": \"acme\"}' "
                     "WHERE item_id IN ('1', '2', '3')")
    load_items(pd.DataFrame({"item_id": ["cold-1", "cold-2", "cold-off"],
                             "category_id": [category, category, category],
                             "brand": ["acme", None, None], "active": [True, True, False]}),
               url=trained)
    with psycopg.connect(trained) as conn:
        result = train_interest(conn, TrainConfig(dim=16, epochs=1, max_len=20),
                                tolerance=0.999)
        version = result["version_id"]
        conn.commit()
        rows = dict(conn.execute(
            "SELECT i.item_id, e.embedding::text FROM recsys.items i JOIN recsys.item_embeddings"
            " e ON e.item_key = i.item_key AND e.version_id = %s WHERE i.item_id LIKE 'cold-%%'",
            (version,)).fetchall())
        category_vector, acme_vector = conn.execute(
            "SELECT ce.embedding::text, (SELECT avg(e.embedding)::text FROM recsys.item_embeddings"
            " e JOIN recsys.items i USING (item_key) WHERE e.version_id = %s"
            " AND i.attributes @> '{\"brand\": \"acme\"}' AND i.first_seen IS NOT NULL)"
            " FROM recsys.category_embeddings ce JOIN recsys.categories c USING (category_key)"
            " WHERE ce.version_id = %s AND c.category_id = %s",
            (version, version, category)).fetchone()
        similar = _recommend(conn, "SELECT similar_item_id FROM recsys.similar_items("
                                   "'cold-2', 5)")
    assert set(rows) == {"cold-1", "cold-2"}  # an inactive item gets none

    def vec(text: str) -> list[float]:
        return [float(x) for x in text.strip("[]").split(",")]

    assert vec(rows["cold-2"]) == pytest.approx(vec(category_vector), abs=1e-5)
    mean = [(a + b) / 2 for a, b in zip(vec(category_vector), vec(acme_vector), strict=True)]
    assert vec(rows["cold-1"]) == pytest.approx(mean, abs=1e-5)
    assert len(similar) == 5


_VERBS = {"viewed it": "pv", "saved it": "fav", "added it to your cart": "cart",
          "bought it": "buy"}


def _false_reasons(conn: psycopg.Connection, users: list[str]) -> tuple[int, list[str]]:
    """Checks every reason of each user's top 10 against the tables; (reasons, false ones)."""
    cf = conn.execute("SELECT version_id FROM recsys.model_versions WHERE kind = 'cf' AND active"
                      ).fetchone()[0]
    checked, false = 0, []
    for user in users:
        history = {r[0]: r[1] for r in conn.execute(
            "SELECT i.item_id, array_agg(DISTINCT b.name || ' ' || to_char(e.ts AT TIME ZONE "
            "'UTC', 'YYYY-MM-DD')) FROM recsys.events e JOIN recsys.users u USING (user_key) "
            "JOIN recsys.items i USING (item_key) JOIN recsys.behavior_types b USING "
            "(behavior_key) WHERE u.user_id = %s GROUP BY i.item_id", (user,))}
        for item, reason in conn.execute("SELECT item_id, reason FROM recsys.recommend(%s, 10)",
                                         (user,)).fetchall():
            checked += 1
            ok = False
            if m := re.fullmatch(r"you (.+) on (\d{4}-\d{2}-\d{2})", reason):
                ok = f"{_VERBS.get(m[1])} {m[2]}" in history.get(item, [])
            elif item in history:
                ok = False  # an own item must get a history reason
            elif m := re.fullmatch(r"similar to (.+) you viewed", reason):
                ok = m[1] in history and conn.execute(
                    "SELECT 1 FROM recsys.item_neighbors n JOIN recsys.items a "
                    "ON a.item_key = n.item_key JOIN recsys.items b ON b.item_key = n.neighbor_key"
                    " WHERE n.version_id = %s AND a.item_id = %s AND b.item_id = %s",
                    (cf, m[1], item)).fetchone() is not None
            elif m := re.fullmatch(r"trending in category (.+)", reason):
                ok = conn.execute(  # in its category's top 20 by trend (ties counted as in)
                    "SELECT (SELECT count(*) FROM recsys.item_stats o WHERE o.version_id ="
                    " s.version_id AND o.category_key = s.category_key AND o.trend > s.trend)"
                    " < 20 FROM recsys.item_stats s JOIN recsys.items i USING (item_key)"
                    " JOIN recsys.categories c ON c.category_key = s.category_key"
                    " WHERE s.version_id = %s AND i.item_id = %s AND c.category_id = %s",
                    (cf, item, m[1])).fetchone() == (True,)
            else:
                ok = reason == "matches your current interests"
            if not ok:
                false.append(f"user {user}: {item}: {reason}")
    return checked, false


def test_reasons_of_100_users_top_10_are_true(trained, capsys):
    with psycopg.connect(trained, autocommit=True) as conn:
        users = [r[0] for r in conn.execute(
            "SELECT user_id FROM recsys.users ORDER BY user_key LIMIT 100")]
        checked, false = _false_reasons(conn, users)
        kinds = conn.execute(
            "SELECT split_part(r.reason, ' ', 1) || ' ' || split_part(r.reason, ' ', 2), count(*)"
            " FROM unnest(%s::text[]) u(id), recsys.recommend(u.id, 10) r GROUP BY 1 ORDER BY 1",
            (users,)).fetchall()
    with capsys.disabled():
        print(f"\nreason check: {checked} reasons of {len(users)} users, {len(false)} false; "
              f"kinds {kinds}")
    assert checked == 1000
    assert not false, false[:20]


def test_a_catalog_items_first_event_sets_first_seen(db_url):
    from recsys_db.ingest import load_events

    load_items(pd.DataFrame({"item_id": ["sku-a", "sku-b"], "category_id": ["c", "c"]}))
    load_events([("u1", "sku-a", "c", "pv", 1_600_000_000)])
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT recsys.track_event('u2', 'sku-b', 'pv', to_timestamp(1600000100))")
        conn.execute("SELECT recsys.track_event('u2', 'sku-b', 'pv', to_timestamp(1600000050))")
        seen = dict(conn.execute("SELECT item_id, extract(epoch FROM first_seen)::bigint "
                                 "FROM recsys.items").fetchall())
    assert seen == {"sku-a": 1_600_000_000, "sku-b": 1_600_000_050}
