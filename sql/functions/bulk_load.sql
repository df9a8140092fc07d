-- The bulk door (Python COPYs rows into pg_temp.recsys_stage, then calls these two).

-- Bulk door, step 1: judge every staged row (pg_temp.recsys_stage, filled by COPY) with the
-- rules above into pg_temp.recsys_checked. Rows of forgotten users (recsys.forgotten_users) are
-- skipped before judging - neither stored nor quarantined - and counted per tombstone. Returns
-- the number of good and bad rows and of rows skipped as a forgotten user's.
CREATE OR REPLACE FUNCTION recsys.check_staged(OUT good bigint, OUT bad bigint,
                                               OUT forgotten bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DROP TABLE IF EXISTS pg_temp.recsys_checked;
    CREATE TEMP TABLE recsys_checked ON COMMIT DROP AS
    SELECT s.line_no, s.raw, s.user_id, s.item_id, s.category_id, s.behavior, s.ts_text,
           b.behavior_key, s.ts,
           coalesce(s.problem,
                    CASE WHEN s.ts_text IS NOT NULL AND s.ts IS NULL
                         THEN format('unparseable timestamp %s', quote_literal(left(s.ts_text, 40)))
                    END,
                    recsys.event_problem(s.user_id, s.item_id, s.category_id, s.behavior,
                                         b.behavior_key IS NOT NULL, s.ts)) AS problem
    FROM (SELECT st.line_no, st.raw, st.problem,
                 recsys.normalize_id(st.user_id) AS user_id,
                 recsys.normalize_id(st.item_id) AS item_id,
                 recsys.normalize_id(st.category_id) AS category_id,
                 recsys.normalize_id(st.behavior) AS behavior,
                 recsys.normalize_id(st.ts) AS ts_text,
                 recsys.parse_epoch(recsys.normalize_id(st.ts)) AS ts
          FROM pg_temp.recsys_stage st
          OFFSET 0) s  -- a fence: each value is computed once, not once per use below
    LEFT JOIN recsys.behavior_types b ON b.name = s.behavior;
    -- forgotten users: a shared lock on the item rows, then shared locks on the buckets of every
    -- staged user, in bucket order, held until this load commits (sql/functions/forgotten.sql),
    -- then their rows out
    PERFORM pg_advisory_xact_lock_shared(recsys.forget_lock_space(), recsys.forget_items_lock());
    PERFORM pg_advisory_xact_lock_shared(recsys.forget_lock_space(), k.bucket)
    FROM (SELECT DISTINCT recsys.forget_lock_bucket(c.user_id) AS bucket
          FROM pg_temp.recsys_checked c WHERE c.user_id IS NOT NULL ORDER BY 1) k;
    forgotten := 0;
    IF EXISTS (SELECT 1 FROM recsys.forgotten_users) THEN
        WITH hit AS (  -- by user id; a line too broken to have one (wrong column count,
                       -- bad UTF-8): by any of its raw fields
            SELECT c.line_no, h.user_hash
            FROM (SELECT u.user_id, f.user_hash  -- one hash per distinct user, not per row
                  FROM (SELECT DISTINCT c2.user_id FROM pg_temp.recsys_checked c2
                        WHERE c2.user_id IS NOT NULL) u
                  JOIN recsys.forgotten_users f ON f.user_hash = recsys.user_id_hash(u.user_id)
                 ) h
            JOIN pg_temp.recsys_checked c ON c.user_id = h.user_id
            UNION ALL
            SELECT c.line_no, min(f.user_hash)
            FROM pg_temp.recsys_checked c
            CROSS JOIN LATERAL recsys.raw_fields(c.raw) AS r(field)
            JOIN recsys.forgotten_users f ON f.user_hash = recsys.user_id_hash(r.field)
            WHERE c.user_id IS NULL AND c.raw IS NOT NULL
            GROUP BY c.line_no),
        gone AS (
            DELETE FROM pg_temp.recsys_checked c USING hit WHERE c.line_no = hit.line_no
            RETURNING hit.user_hash),
        counted AS (
            UPDATE recsys.forgotten_users f SET skipped_events = f.skipped_events + g.n
            FROM (SELECT gone.user_hash, count(*) AS n FROM gone GROUP BY 1) g
            WHERE f.user_hash = g.user_hash
            RETURNING g.n)
        SELECT coalesce(sum(counted.n), 0) INTO forgotten FROM counted;
    END IF;
    ANALYZE pg_temp.recsys_checked;
    SELECT count(*) FILTER (WHERE c.problem IS NULL), count(*) FILTER (WHERE c.problem IS NOT NULL)
      INTO good, bad FROM pg_temp.recsys_checked c;
END
$$;

-- Bulk door, step 2: quarantine the bad rows, create new categories/items/users and insert the
-- good events in one statement each. Duplicates (already stored or repeated) are skipped.
CREATE OR REPLACE FUNCTION recsys.load_checked(
    p_source text,
    OUT loaded bigint, OUT duplicates bigint, OUT rejected bigint,
    OUT new_users bigint, OUT new_items bigint, OUT new_categories bigint
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_good bigint;
    -- the good rows as events (run twice below: a constant, no input in it)
    v_insert_events constant text := '
        INSERT INTO recsys.events (user_key, item_key, behavior_key, ts, category_key)
        SELECT u.user_key, i.item_key, c.behavior_key, c.ts, cat.category_key
        FROM pg_temp.recsys_checked c
        JOIN recsys.users u ON u.user_id = c.user_id
        JOIN recsys.items i ON i.item_id = c.item_id
        LEFT JOIN recsys.categories cat ON cat.category_id = c.category_id
        WHERE c.problem IS NULL';
    -- the items of the good rows, row by row with ON CONFLICT (the fallback below: a constant,
    -- no input in it)
    v_upsert_items constant text := '
        WITH upsert AS (
            INSERT INTO recsys.items AS i (item_id, category_key, first_seen)
            SELECT g.item_id, cat.category_key, g.first_seen
            FROM (  -- per item, its most frequent category in this load (ties: the smallest id)
                  SELECT DISTINCT ON (p.item_id) p.item_id, p.category_id,
                         min(p.first_seen) OVER w AS first_seen, min(p.first_line) OVER w AS first_line
                  FROM (SELECT c.item_id, c.category_id, count(*) AS n, min(c.ts) AS first_seen,
                               min(c.line_no) AS first_line
                        FROM pg_temp.recsys_checked c WHERE c.problem IS NULL
                        GROUP BY c.item_id, c.category_id) p
                  WINDOW w AS (PARTITION BY p.item_id)
                  ORDER BY p.item_id, p.n DESC, p.category_id) g
            LEFT JOIN recsys.categories cat ON cat.category_id = g.category_id
            ORDER BY g.first_line
            ON CONFLICT (item_id) DO UPDATE
                SET first_seen = least(i.first_seen, excluded.first_seen),
                    category_key = coalesce(i.category_key, excluded.category_key)
                WHERE excluded.first_seen < i.first_seen OR i.first_seen IS NULL
                   OR (i.category_key IS NULL AND excluded.category_key IS NOT NULL)
            RETURNING (xmax = 0) AS inserted)
        SELECT count(*) FILTER (WHERE inserted) FROM upsert';
BEGIN
    INSERT INTO recsys.rejected_events (source, line_no, raw, reason)
    SELECT p_source, c.line_no,
           coalesce(c.raw, array_to_string(
               ARRAY[c.user_id, c.item_id, c.category_id, c.behavior, c.ts_text], ',', '')),
           c.problem
    FROM pg_temp.recsys_checked c WHERE c.problem IS NOT NULL ORDER BY c.line_no;
    GET DIAGNOSTICS rejected = ROW_COUNT;

    SELECT count(*) INTO v_good FROM pg_temp.recsys_checked c WHERE c.problem IS NULL;

    INSERT INTO recsys.categories (category_id)
    SELECT c.category_id FROM pg_temp.recsys_checked c
    WHERE c.problem IS NULL AND c.category_id IS NOT NULL
    GROUP BY c.category_id ORDER BY min(c.line_no)
    ON CONFLICT (category_id) DO NOTHING;
    GET DIAGNOSTICS new_categories = ROW_COUNT;

    -- Items: one pass finds each item's first event in this load and its stored row. New items
    -- go in by a plain INSERT, in order of first appearance, with their most frequent category
    -- in this load (ties: the smallest id), counted only for them and for stored items without
    -- one. Stored items are updated only where this load moves first_seen earlier or gives the
    -- missing category - not locked or rewritten each: at 10M events an ON CONFLICT upsert of
    -- every item of a 1M-row chunk cost 2.5 s, this 1.8 s. An item stored meanwhile by a
    -- concurrent writer raises unique_violation (the INSERT waits for its commit): the block's
    -- subtransaction undoes both writes and the ON CONFLICT upsert does the same work row by row.
    BEGIN
        WITH seen AS MATERIALIZED (
            SELECT a.item_id, a.first_seen, a.first_line, i.item_key,
                   i.category_key AS stored_category
            FROM (SELECT c.item_id, min(c.ts) AS first_seen, min(c.line_no) AS first_line
                  FROM pg_temp.recsys_checked c WHERE c.problem IS NULL
                  GROUP BY c.item_id) a
            LEFT JOIN recsys.items i ON i.item_id = a.item_id),
        category AS (
            SELECT DISTINCT ON (p.item_id) p.item_id, cat.category_key
            FROM (SELECT c.item_id, c.category_id, count(*) AS n
                  FROM pg_temp.recsys_checked c
                  JOIN seen s ON s.item_id = c.item_id
                             AND (s.item_key IS NULL OR s.stored_category IS NULL)
                  WHERE c.problem IS NULL
                  GROUP BY c.item_id, c.category_id) p
            LEFT JOIN recsys.categories cat ON cat.category_id = p.category_id
            ORDER BY p.item_id, p.n DESC, p.category_id),
        added AS (
            INSERT INTO recsys.items (item_id, category_key, first_seen)
            SELECT s.item_id, k.category_key, s.first_seen
            FROM seen s LEFT JOIN category k ON k.item_id = s.item_id
            WHERE s.item_key IS NULL
            ORDER BY s.first_line
            RETURNING 1),
        moved AS (
            UPDATE recsys.items i
            SET first_seen = least(i.first_seen, s.first_seen),
                category_key = coalesce(i.category_key, k.category_key)
            FROM seen s LEFT JOIN category k ON k.item_id = s.item_id
            WHERE i.item_key = s.item_key
              AND (s.first_seen < i.first_seen OR i.first_seen IS NULL
                   OR (i.category_key IS NULL AND k.category_key IS NOT NULL)))
        SELECT count(*) INTO new_items FROM added;  -- (moved runs too: every WITH write does)
    EXCEPTION WHEN unique_violation THEN
        EXECUTE v_upsert_items INTO new_items;
    END;

    WITH upsert AS (
        INSERT INTO recsys.users AS u (user_id, first_seen)
        SELECT c.user_id, min(c.ts) FROM pg_temp.recsys_checked c WHERE c.problem IS NULL
        GROUP BY c.user_id ORDER BY min(c.line_no)
        ON CONFLICT (user_id) DO UPDATE SET first_seen = excluded.first_seen
            WHERE excluded.first_seen < u.first_seen OR u.first_seen IS NULL
        RETURNING (xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted) INTO new_users FROM upsert;

    -- the months the good rows fall in: one pass for the range, then a month between its ends
    -- only if some row falls in it (months are UTC's, whatever the session's TimeZone)
    PERFORM recsys.ensure_events_partition(m.month AT TIME ZONE 'UTC')
    FROM (SELECT min(c.ts) AS lo, max(c.ts) AS hi FROM pg_temp.recsys_checked c
          WHERE c.problem IS NULL) r
    CROSS JOIN LATERAL generate_series(date_trunc('month', r.lo AT TIME ZONE 'UTC'),
                                       r.hi AT TIME ZONE 'UTC', interval '1 month') AS m(month)
    WHERE EXISTS (SELECT 1 FROM pg_temp.recsys_checked c
                  WHERE c.problem IS NULL AND c.ts >= m.month AT TIME ZONE 'UTC'
                    AND c.ts < (m.month + interval '1 month') AT TIME ZONE 'UTC');

    -- New events, the common case, go in by a plain INSERT: ON CONFLICT's speculative
    -- insertion costs about twice as much a row. A duplicate anywhere - twice in this load,
    -- already stored, or stored meanwhile by a concurrent writer (the insert waits for that
    -- writer's commit) - raises unique_violation: the block's subtransaction undoes the plain
    -- INSERT and the ON CONFLICT insert stores what is new. A reloaded file fails at its first
    -- row, so the wasted work is small when the whole load is known.
    BEGIN
        EXECUTE v_insert_events;
        GET DIAGNOSTICS loaded = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
        EXECUTE v_insert_events || ' ON CONFLICT DO NOTHING';
        GET DIAGNOSTICS loaded = ROW_COUNT;
    END;
    duplicates := v_good - loaded;
END
$$;
