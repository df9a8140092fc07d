-- How far a user's recent interests moved from their long-term ones: the Jensen-Shannon
-- divergence (base 2, in [0, 1]) of the two category distributions, the categories gaining and
-- losing most share (up to 5 each, those moving by more than 2 points), and p_migrate: the
-- probability that the next event leaves the categories of the user's last events (NULL before
-- a model with the stay-or-migrate heads).
CREATE OR REPLACE FUNCTION recsys.interest_drift(user_id text, half_life interval DEFAULT '1 day')
RETURNS TABLE (drift double precision, gaining text[], losing text[],
               p_migrate double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS (SELECT * FROM recsys.interest_profile(user_id, half_life)
               WHERE long_term_share > 0 OR recent_share > 0),
    m AS (SELECT p.*, (p.long_term_share + p.recent_share) / 2 AS mid FROM p)
    SELECT CASE WHEN count(*) = 0 THEN NULL ELSE
             0.5 * sum(CASE WHEN long_term_share > 0
                            THEN long_term_share * log(2.0, (long_term_share / mid)::numeric)
                            ELSE 0 END)
           + 0.5 * sum(CASE WHEN recent_share > 0
                            THEN recent_share * log(2.0, (recent_share / mid)::numeric)
                            ELSE 0 END) END::double precision,
           coalesce((array_agg(category_id ORDER BY recent_share - long_term_share DESC)
                     FILTER (WHERE recent_share - long_term_share > 0.02))[1:5], '{}'),
           coalesce((array_agg(category_id ORDER BY recent_share - long_term_share)
                     FILTER (WHERE long_term_share - recent_share > 0.02))[1:5], '{}'),
           (SELECT s.p_migrate::double precision
            FROM recsys.users u JOIN recsys.user_states s ON s.user_key = u.user_key
            JOIN recsys.model_versions v
              ON v.version_id = s.version_id AND v.kind = 'interest' AND v.active
            WHERE u.user_id = interest_drift.user_id)
    FROM m
$$;
