-- Event ingestion rules: every door (recsys.track_event, the bulk load) normalises ids with
-- recsys.normalize_id and judges rows with recsys.event_problem.

-- Ids are text as the application gives them, trimmed; empty means missing.
CREATE OR REPLACE FUNCTION recsys.normalize_id(p_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT nullif(btrim(p_id), '') $$;

CREATE OR REPLACE FUNCTION recsys.max_id_length() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 256 $$;

-- Unix seconds (integer or decimal) -> timestamptz; NULL when the text is not such a number.
-- Plain digits (the common case) take a cheap test; anything else goes through the regex.
-- (`!~ '[^0-9]'` costs a third of `btrim(p_text, '0123456789') = ''`: 0.1 s per 1M rows.)
CREATE OR REPLACE FUNCTION recsys.parse_epoch(p_text text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN length(p_text) BETWEEN 1 AND 11 AND p_text !~ '[^0-9]'
                THEN to_timestamp(p_text::bigint)
                WHEN p_text ~ '^\s*-?[0-9]{1,11}(\.[0-9]{1,9})?\s*$'
                THEN to_timestamp(p_text::double precision) END
$$;

-- NULL when the event is acceptable, else a short reason naming the problem.
-- One expression with no table access, so the planner inlines it into set-based loads
-- (STABLE, not IMMUTABLE, because format() is STABLE - an IMMUTABLE wrapper would not inline).
CREATE OR REPLACE FUNCTION recsys.event_problem(
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
