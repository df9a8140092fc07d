-- trend = (n_1d + 1) / (n_7d / 7 + 1) * ln(2 + n_1d): faster than its weekly pace, and busy.
CREATE OR REPLACE FUNCTION recsys.refresh_item_stats(p_version integer, p_as_of timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_rows bigint;
BEGIN
    DELETE FROM recsys.item_stats WHERE version_id = p_version;
    INSERT INTO recsys.item_stats
    SELECT p_version, e.item_key, i.category_key,
           count(*) FILTER (WHERE e.ts >= p_as_of - interval '1 day'),
           count(*) FILTER (WHERE e.ts >= p_as_of - interval '7 days'),
           count(*),
           ((count(*) FILTER (WHERE e.ts >= p_as_of - interval '1 day') + 1.0)
            / (count(*) FILTER (WHERE e.ts >= p_as_of - interval '7 days') / 7.0 + 1.0)
            * ln(2.0 + count(*) FILTER (WHERE e.ts >= p_as_of - interval '1 day'))),
           extract(epoch FROM p_as_of - min(e.ts)) / 86400.0
    FROM recsys.events e JOIN recsys.items i ON i.item_key = e.item_key
    WHERE e.ts < p_as_of
    GROUP BY e.item_key, i.category_key;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
