"""recsys.recommend and friends: arguments, cold start, live interest shift, least privilege."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest


def test_recommend_returns_ranked_items_with_reasons(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        rows = conn.execute("SELECT * FROM recsys.recommend('3', k => 10)").fetchall()
        assert len(rows) == 10
        assert [r[2] for r in rows] == list(range(1, 11))
        assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
        assert all(r[3] for r in rows)
        bought = {r[0] for r in conn.execute(
            "SELECT i.item_id FROM recsys.events e JOIN recsys.items i USING (item_key) "
            "JOIN recsys.users u USING (user_key) WHERE u.user_id = '3' AND e.behavior_key = 4")}
        assert not bought & {r[0] for r in rows}
        similar = conn.execute("SELECT * FROM recsys.similar_items(%s, 5)", (rows[0][0],)
                               ).fetchall()
        assert len(similar) == 5 and rows[0][0] not in {r[0] for r in similar}
        session = conn.execute("SELECT * FROM recsys.recommend_for_session(ARRAY['1', '2'], 5)"
                               ).fetchall()
        assert len(session) == 5 and {"1", "2"}.isdisjoint(r[0] for r in session)


def test_category_filter_and_bad_arguments(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        cat = conn.execute("SELECT c.category_id FROM recsys.categories c ORDER BY category_key "
                           "LIMIT 1").fetchone()[0]
        rows = conn.execute("SELECT r.item_id, c.category_id FROM recsys.recommend('3', 5, %s) r "
                            "JOIN recsys.items i USING (item_id) JOIN recsys.categories c "
                            "USING (category_key)", (cat,)).fetchall()
        assert rows and {r[1] for r in rows} == {cat}
        for sql, message in [
            ("SELECT * FROM recsys.recommend('3', 0)", "k must be between 1 and 1000, got 0"),
            ("SELECT * FROM recsys.recommend('3', 1001)", "got 1001"),
            ("SELECT * FROM recsys.recommend('3', NULL)", "got NULL"),
            ("SELECT * FROM recsys.recommend('3', 5, 'no-such-category')",
             "unknown category 'no-such-category'"),
            ("SELECT * FROM recsys.similar_items('no-such-item')", "unknown item"),
            ("SELECT * FROM recsys.recommend_for_session(ARRAY['1'], -1)", "k must be"),
        ]:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
                conn.execute(sql)


def test_cold_start_user_and_item(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        rows = conn.execute("SELECT * FROM recsys.recommend('never-seen-user', 5)").fetchall()
        assert len(rows) == 5 and all(r[3].startswith("trending in category") for r in rows)
        assert len(conn.execute("SELECT * FROM recsys.recommend(NULL, 3)").fetchall()) == 3
        # A brand-new item (no embedding, no neighbours) viewed by a new user: still results.
        conn.execute("SELECT recsys.track_event('newcomer', 'brand-new-item', 'pv', now(), '1')")
        rows = conn.execute("SELECT * FROM recsys.recommend('newcomer', 5)").fetchall()
        assert len(rows) == 5
        assert len(conn.execute("SELECT * FROM recsys.recommend_for_session("
                                "ARRAY['brand-new-item'], 3)").fetchall()) == 3


def test_interest_shift_reaches_results_without_any_job(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        user = "7"
        last = conn.execute("SELECT max(e.ts) FROM recsys.events e JOIN recsys.users u "
                            "USING (user_key) WHERE u.user_id = %s", (user,)).fetchone()[0]
        current = {r[0] for r in conn.execute(
            "SELECT i.category_key FROM recsys.events e JOIN recsys.users u USING (user_key) "
            "JOIN recsys.items i USING (item_key) WHERE u.user_id = %s", (user,))}
        # The most popular category this user never touched.
        new_cat, cat_id = conn.execute(
            "SELECT c.category_key, c.category_id FROM recsys.items i JOIN recsys.events e "
            "USING (item_key) JOIN recsys.categories c ON c.category_key = i.category_key "
            "WHERE NOT (i.category_key = ANY(%s)) GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1",
            (list(current),)).fetchone()

        def share(rows: list[tuple]) -> float:
            cats = [r[0] for r in conn.execute(
                "SELECT i.category_key FROM unnest(%s::text[]) WITH ORDINALITY AS x(id, n) "
                "JOIN recsys.items i ON i.item_id = x.id ORDER BY n", ([r[0] for r in rows],))]
            return sum(c == new_cat for c in cats) / len(cats)

        before = conn.execute("SELECT * FROM recsys.recommend(%s, 20)", (user,)).fetchall()
        items = [r[0] for r in conn.execute(
            "SELECT i.item_id FROM recsys.items i JOIN recsys.events e USING (item_key) "
            "WHERE i.category_key = %s GROUP BY i.item_id ORDER BY count(*) DESC LIMIT 3",
            (new_cat,))]
        for n, item in enumerate(items):
            conn.execute("SELECT recsys.track_event(%s, %s, 'pv', %s, %s)",
                         (user, item, last + timedelta(minutes=n + 1), cat_id))
        after = conn.execute("SELECT * FROM recsys.recommend(%s, 20)", (user,)).fetchall()
        assert share(after) > share(before)
        assert share(after) >= 0.2


def test_app_role_executes_functions_but_cannot_touch_tables(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        conn.execute("SET ROLE recsys_app")
        assert len(conn.execute("SELECT * FROM recsys.recommend('3', 3)").fetchall()) == 3
        conn.execute("SELECT recsys.track_event('app-user', '1', 'pv')")
        assert conn.execute("SELECT count(*) FROM recsys.interest_profile('3')").fetchone()[0]
        for sql in ("SELECT * FROM recsys.events LIMIT 1",
                    "SELECT * FROM recsys.users LIMIT 1",
                    "INSERT INTO recsys.behavior_types VALUES (9, 'x', 1)",
                    "DELETE FROM recsys.model_versions",
                    "SELECT recsys.refresh_category_transitions()",
                    "SELECT * FROM recsys.candidate_features(1, now(), 1, 1)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        conn.execute("RESET ROLE")


def test_python_api_returns_typed_rows_and_orm_items(trained):
    from sqlalchemy.exc import DBAPIError

    from recsys_db import Recommendation, recommend, recommend_items, similar_items
    from recsys_db.db import session_scope
    from recsys_db.orm import Item

    with session_scope() as session:
        recs = recommend(session, "3", k=5)
        assert len(recs) == 5 and all(isinstance(r, Recommendation) for r in recs)
        assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
        pairs = recommend_items(session, "3", k=5)
        assert [r for _, r in pairs] == recs
        assert all(isinstance(i, Item) and i.item_id == r.item_id for i, r in pairs)
        assert len(similar_items(session, recs[0].item_id, k=3)) == 3
        with pytest.raises(DBAPIError, match="k must be between 1 and 1000"):
            recommend(session, "3", k=0)


def test_new_item_gets_a_vector_from_its_category(trained):
    """An item that arrived after training has no embedding: its category's mean vector stands
    in, so it can be a vector candidate right away, with a vector score from that mean (in the
    migrate part: a new item is never among the user's recent items)."""
    with psycopg.connect(trained, autocommit=True) as conn:
        user_key, interest, category_key, category_id = conn.execute(
            "SELECT s.user_key, s.version_id, s.next_categories[1], c.category_id "
            "FROM recsys.user_states s JOIN recsys.users u USING (user_key) "
            "JOIN recsys.model_versions mv ON mv.version_id = s.version_id AND mv.active "
            "JOIN recsys.categories c ON c.category_key = s.next_categories[1] "
            "WHERE u.user_id = '3'").fetchone()
        conn.execute("SELECT recsys.track_event('someone-else', 'fresh-item', 'pv', now(), %s)",
                     (category_id,))
        expected = conn.execute(
            "SELECT s.migrate_offset - (ce.embedding <#> s.state) "
            "FROM recsys.category_embeddings ce, "
            "recsys.user_states s WHERE ce.version_id = %s AND ce.category_key = %s "
            "AND s.version_id = ce.version_id AND s.user_key = %s",
            (interest, category_key, user_key)).fetchone()[0]
        cf = conn.execute("SELECT version_id FROM recsys.model_versions WHERE kind = 'cf' "
                          "AND active").fetchone()[0]
        row = conn.execute(
            "SELECT c.sources, c.features[1] FROM recsys.candidate_features(%s, 'infinity', %s,"
            " %s) c JOIN recsys.items i USING (item_key) WHERE i.item_id = 'fresh-item'",
            (user_key, interest, cf)).fetchone()
        assert row is not None, "the new item should be a candidate"
        assert "vector" in row[0]
        assert row[1] == pytest.approx(expected, rel=1e-5)


def test_histories_spanning_years_do_not_underflow(trained):
    with psycopg.connect(trained, autocommit=True) as conn:
        conn.execute("SELECT recsys.track_event('7', 'x-later', 'pv', (SELECT max(ts) + "
                     "interval '4 years' FROM recsys.events), '1')")
        assert len(conn.execute("SELECT * FROM recsys.recommend('7', 10)").fetchall()) == 10
        assert conn.execute("SELECT count(*) FROM recsys.interest_profile('7')").fetchone()[0]


def test_serving_plan_is_generic_uses_hnsw_and_no_nested_loops_over_ctes(trained):
    """The candidate query runs as a cached generic plan (sql/0006_serving_speed.sql): it must
    keep using the HNSW index and must not fall back to nested loops that rescan a CTE for
    every candidate (what a category filter inside the query used to cause)."""
    import json

    with psycopg.connect(trained, autocommit=True) as conn:
        interest, cf = (conn.execute("SELECT version_id FROM recsys.model_versions WHERE kind = "
                                     "%s AND active", (k,)).fetchone()[0]
                        for k in ("interest", "cf"))
        text = conn.execute("SELECT recsys.candidate_features_query(%s)", (interest,)
                            ).fetchone()[0]
        conn.execute("SET search_path = pg_catalog, public")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE q(int, timestamptz, int, int, int, int) AS {text}")
        explain = f"EXPLAIN (FORMAT JSON) EXECUTE q(5, 'infinity', {interest}, {cf}, NULL, 100)"
        plan = conn.execute(explain).fetchone()[0]
        conn.execute("SET enable_seqscan = off")  # 600 items: a scan would win; 100k do not
        conn.execute("DEALLOCATE q")
        conn.execute(f"PREPARE q(int, timestamptz, int, int, int, int) AS {text}")
        indexed = conn.execute(explain).fetchone()[0]

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    assert any(n.get("Index Name") == f"item_embeddings_v{interest}_hnsw"
               for n in nodes(indexed[0]["Plan"])), json.dumps(indexed)[:2000]
    per_candidate = {"cf", "session", "shares", "predicted", "touched", "cat_touched"}
    for n in nodes(plan[0]["Plan"]):
        if n["Node Type"] == "Nested Loop":
            inner = n["Plans"][1]
            assert inner.get("CTE Name") not in per_candidate, f"nested loop rescanning {inner}"
