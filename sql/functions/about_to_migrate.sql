-- "Who is about to change interests?": users by p_migrate under the active interest model.
CREATE OR REPLACE FUNCTION recsys.about_to_migrate(k integer DEFAULT 100, min_p double precision DEFAULT 0)
RETURNS TABLE (user_id text, p_migrate double precision, last_event_ts timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF k IS NULL OR k < 1 OR k > 100000 THEN
        RAISE EXCEPTION 'about_to_migrate: k must be between 1 and 100000, got %',
            coalesce(k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_p IS NULL OR min_p < 0 OR min_p > 1 THEN
        RAISE EXCEPTION 'about_to_migrate: min_p must be between 0 and 1, got %',
            coalesce(min_p::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT u.user_id, s.p_migrate::double precision, s.last_event_ts
    FROM recsys.user_states s
    JOIN recsys.model_versions v
      ON v.version_id = s.version_id AND v.kind = 'interest' AND v.active
    JOIN recsys.users u ON u.user_key = s.user_key
    WHERE s.p_migrate >= min_p
    ORDER BY s.p_migrate DESC, u.user_id
    LIMIT k;
END
$$;
