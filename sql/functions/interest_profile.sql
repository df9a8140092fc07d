-- A user's category shares: long-term (all events), recent (exponentially time-decayed with
-- `half_life`, measured back from the user's latest event; exponents clamped at -700, where exp()
-- would raise "underflow") - both weighted by behavior weight - and the active interest model's
-- predicted next-category distribution (top categories).
CREATE OR REPLACE FUNCTION recsys.interest_profile(user_id text, half_life interval DEFAULT '1 day')
RETURNS TABLE (category_id text, long_term_share double precision,
               recent_share double precision, predicted_next_share double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF half_life IS NULL OR half_life <= interval '0' THEN
        RAISE EXCEPTION 'interest_profile: half_life must be positive, got %', half_life
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH u AS (SELECT us.user_key FROM recsys.users us WHERE us.user_id = interest_profile.user_id),
    ev AS (SELECT e.category_key, e.ts, b.weight
           FROM recsys.events e JOIN u ON u.user_key = e.user_key
           JOIN recsys.behavior_types b ON b.behavior_key = e.behavior_key
           WHERE e.category_key IS NOT NULL),
    agg AS (SELECT ev.category_key, sum(ev.weight)::double precision AS lt,
                   sum(ev.weight * exp(greatest(-700.0, -ln(2) * extract(epoch FROM (m.t - ev.ts))
                                        / extract(epoch FROM half_life)))) AS rc
            FROM ev CROSS JOIN (SELECT max(ts) AS t FROM ev) m GROUP BY ev.category_key),
    pred AS (SELECT p.category_key, p.prob::double precision AS prob
             FROM recsys.user_states s JOIN u ON u.user_key = s.user_key
             JOIN recsys.model_versions v
               ON v.version_id = s.version_id AND v.kind = 'interest' AND v.active
             CROSS JOIN LATERAL unnest(s.next_categories, s.next_category_probs)
                 AS p(category_key, prob)),
    shares AS (SELECT coalesce(a.category_key, p.category_key) AS category_key,
                      coalesce(a.lt / nullif(sum(a.lt) OVER (), 0), 0) AS lt,
                      coalesce(a.rc / nullif(sum(a.rc) OVER (), 0), 0) AS rc,
                      coalesce(p.prob, 0) AS pr
               FROM agg a FULL JOIN pred p ON p.category_key = a.category_key)
    SELECT c.category_id, s.lt, s.rc, s.pr
    FROM shares s JOIN recsys.categories c ON c.category_key = s.category_key
    ORDER BY s.rc DESC, s.pr DESC, s.lt DESC, c.category_id;
END
$$;
