-- Event ingestion rules (revision 0001): the one set of rules every door uses.
--   * recsys.track_event(...)            - applications, one event per call
--   * recsys.check_staged() / load_staged - bulk loads (Python COPYs rows into pg_temp.recsys_stage)
-- Both doors normalise ids with recsys.normalize_id and judge rows with recsys.event_problem.

-- Ids are text as the application gives them, trimmed; empty means missing.
CREATE FUNCTION recsys.normalize_id(p_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT nullif(btrim(p_id), '') $$;

CREATE FUNCTION recsys.max_id_length() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 256 $$;

-- Unix seconds (integer or decimal) -> timestamptz; NULL when the text is not such a number.
-- Plain digits (the common case) take a cheap test; anything else goes through the regex.
CREATE FUNCTION recsys.parse_epoch(p_text text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN length(p_text) BETWEEN 1 AND 11 AND btrim(p_text, '0123456789') = ''
                THEN to_timestamp(p_text::bigint)
                WHEN p_text ~ '^\s*-?[0-9]{1,11}(\.[0-9]{1,9})?\s*$'
                THEN to_timestamp(p_text::double precision) END
$$;

-- NULL when the event is acceptable, else a short reason naming the problem.
-- One expression with no table access, so the planner inlines it into set-based loads
-- (STABLE, not IMMUTABLE, because format() is STABLE - an IMMUTABLE wrapper would not inline).
CREATE FUNCTION recsys.event_problem(
    p_user_id text, p_item_id text, p_category_id text,
    p_behavior text, p_behavior_known boolean, p_ts timestamptz
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_user_id IS NULL THEN 'missing user_id'
        WHEN p_item_id IS NULL THEN 'missing item_id'
        WHEN length(p_user_id) > recsys.max_id_length()
            THEN format('user_id longer than %s characters', recsys.max_id_length())
        WHEN length(p_item_id) > recsys.max_id_length()
            THEN format('item_id longer than %s characters', recsys.max_id_length())
        WHEN length(p_category_id) > recsys.max_id_length()
            THEN format('category_id longer than %s characters', recsys.max_id_length())
        WHEN p_behavior IS NULL THEN 'missing behavior'
        WHEN NOT p_behavior_known
            THEN format('unknown behavior %s (known: see recsys.behavior_types)',
                        quote_literal(left(p_behavior, 40)))
        WHEN p_ts IS NULL THEN 'missing timestamp'
        WHEN p_ts < timestamptz '1990-01-01 00:00:00+00'
          OR p_ts >= timestamptz '2100-01-01 00:00:00+00'
            THEN format('timestamp %s out of range [1990-01-01, 2100-01-01)', p_ts)
    END
$$;

-- Monthly partitions of recsys.events, created on demand. Rows that already landed in the
-- default partition for that month are moved into the new partition before it is attached.
CREATE FUNCTION recsys.ensure_events_partition(p_ts timestamptz) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from timestamptz := date_trunc('month', p_ts, 'UTC');
    v_to   timestamptz := date_trunc('month', p_ts, 'UTC') + interval '1 month';
    v_name text := 'events_' || to_char(v_from AT TIME ZONE 'UTC', 'YYYY"m"MM');
BEGIN
    IF to_regclass('recsys.' || v_name) IS NOT NULL THEN
        RETURN v_name;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('recsys.ensure_events_partition'));
    IF to_regclass('recsys.' || v_name) IS NOT NULL THEN
        RETURN v_name;
    END IF;
    EXECUTE format('CREATE TABLE recsys.%I (LIKE recsys.events INCLUDING DEFAULTS)', v_name);
    EXECUTE format(
        'WITH moved AS (DELETE FROM recsys.events_default WHERE ts >= %L AND ts < %L RETURNING *)'
        ' INSERT INTO recsys.%I SELECT * FROM moved', v_from, v_to, v_name);
    EXECUTE format('ALTER TABLE recsys.events ATTACH PARTITION recsys.%I FOR VALUES FROM (%L) TO (%L)',
                   v_name, v_from, v_to);
    RETURN v_name;
END
$$;

-- Key of a category/user/item by external id, created when new.
CREATE FUNCTION recsys.category_key_for(p_category_id text) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_key integer;
BEGIN
    IF p_category_id IS NULL THEN RETURN NULL; END IF;
    SELECT category_key INTO v_key FROM recsys.categories WHERE category_id = p_category_id;
    IF NOT FOUND THEN
        INSERT INTO recsys.categories (category_id) VALUES (p_category_id)
        ON CONFLICT (category_id) DO NOTHING RETURNING category_key INTO v_key;
        IF v_key IS NULL THEN
            SELECT category_key INTO v_key FROM recsys.categories WHERE category_id = p_category_id;
        END IF;
    END IF;
    RETURN v_key;
END
$$;

CREATE FUNCTION recsys.user_key_for(p_user_id text, p_ts timestamptz) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_key integer;
BEGIN
    SELECT user_key INTO v_key FROM recsys.users WHERE user_id = p_user_id;
    IF NOT FOUND THEN
        INSERT INTO recsys.users (user_id, first_seen) VALUES (p_user_id, p_ts)
        ON CONFLICT (user_id) DO NOTHING RETURNING user_key INTO v_key;
        IF v_key IS NULL THEN
            SELECT user_key INTO v_key FROM recsys.users WHERE user_id = p_user_id;
        END IF;
    END IF;
    RETURN v_key;
END
$$;

CREATE FUNCTION recsys.item_key_for(p_item_id text, p_category_key integer, p_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_key integer; v_cat integer;
BEGIN
    SELECT item_key, category_key INTO v_key, v_cat FROM recsys.items WHERE item_id = p_item_id;
    IF NOT FOUND THEN
        INSERT INTO recsys.items (item_id, category_key, first_seen)
        VALUES (p_item_id, p_category_key, p_ts)
        ON CONFLICT (item_id) DO NOTHING RETURNING item_key INTO v_key;
        IF v_key IS NULL THEN
            SELECT item_key INTO v_key FROM recsys.items WHERE item_id = p_item_id;
        END IF;
    ELSIF v_cat IS NULL AND p_category_key IS NOT NULL THEN
        UPDATE recsys.items SET category_key = p_category_key WHERE item_key = v_key;
    END IF;
    RETURN v_key;
END
$$;

-- The application door: record one event. Returns its event_id, or NULL when the same event
-- (user, item, behavior, ts) is already stored. Bad arguments raise SQLSTATE 22023.
CREATE FUNCTION recsys.track_event(
    user_id text, item_id text, behavior text,
    ts timestamptz DEFAULT now(), category_id text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user text := recsys.normalize_id(track_event.user_id);
    v_item text := recsys.normalize_id(track_event.item_id);
    v_cat  text := recsys.normalize_id(track_event.category_id);
    v_beh  text := recsys.normalize_id(track_event.behavior);
    v_behavior_key smallint;
    v_problem text;
    v_category_key integer;
    v_event_id bigint;
BEGIN
    SELECT b.behavior_key INTO v_behavior_key FROM recsys.behavior_types b WHERE b.name = v_beh;
    v_problem := recsys.event_problem(v_user, v_item, v_cat, v_beh, v_behavior_key IS NOT NULL,
                                      track_event.ts);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'track_event: %', v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_category_key := recsys.category_key_for(v_cat);
    PERFORM recsys.ensure_events_partition(track_event.ts);
    INSERT INTO recsys.events AS e (user_key, item_key, behavior_key, ts, category_key)
    VALUES (recsys.user_key_for(v_user, track_event.ts),
            recsys.item_key_for(v_item, v_category_key, track_event.ts),
            v_behavior_key, track_event.ts, v_category_key)
    ON CONFLICT DO NOTHING
    RETURNING e.event_id INTO v_event_id;
    RETURN v_event_id;
END
$$;

-- Bulk door, step 1: judge every staged row (pg_temp.recsys_stage, filled by COPY) with the
-- rules above into pg_temp.recsys_checked. Returns the number of good and bad rows.
CREATE FUNCTION recsys.check_staged(OUT good bigint, OUT bad bigint)
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
    ANALYZE pg_temp.recsys_checked;
    SELECT count(*) FILTER (WHERE c.problem IS NULL), count(*) FILTER (WHERE c.problem IS NOT NULL)
      INTO good, bad FROM pg_temp.recsys_checked c;
END
$$;

-- Bulk door, step 2: quarantine the bad rows, create new categories/items/users and insert the
-- good events in one statement each. Duplicates (already stored or repeated) are skipped.
CREATE FUNCTION recsys.load_checked(
    p_source text,
    OUT loaded bigint, OUT duplicates bigint, OUT rejected bigint,
    OUT new_users bigint, OUT new_items bigint, OUT new_categories bigint
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_good bigint;
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
            WHERE excluded.first_seen < i.first_seen
               OR (i.category_key IS NULL AND excluded.category_key IS NOT NULL)
        RETURNING (xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted) INTO new_items FROM upsert;

    WITH upsert AS (
        INSERT INTO recsys.users AS u (user_id, first_seen)
        SELECT c.user_id, min(c.ts) FROM pg_temp.recsys_checked c WHERE c.problem IS NULL
        GROUP BY c.user_id ORDER BY min(c.line_no)
        ON CONFLICT (user_id) DO UPDATE SET first_seen = excluded.first_seen
            WHERE excluded.first_seen < u.first_seen OR u.first_seen IS NULL
        RETURNING (xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted) INTO new_users FROM upsert;

    PERFORM recsys.ensure_events_partition(m.month)
    FROM (SELECT DISTINCT date_trunc('month', c.ts, 'UTC') AS month
          FROM pg_temp.recsys_checked c WHERE c.problem IS NULL) m;

    INSERT INTO recsys.events (user_key, item_key, behavior_key, ts, category_key)
    SELECT u.user_key, i.item_key, c.behavior_key, c.ts, cat.category_key
    FROM pg_temp.recsys_checked c
    JOIN recsys.users u ON u.user_id = c.user_id
    JOIN recsys.items i ON i.item_id = c.item_id
    LEFT JOIN recsys.categories cat ON cat.category_id = c.category_id
    WHERE c.problem IS NULL
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS loaded = ROW_COUNT;
    duplicates := v_good - loaded;
END
$$;
