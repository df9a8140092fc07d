-- Used until a ranker version is trained: a fixed blend of the source scores.
CREATE OR REPLACE FUNCTION recsys.default_rank_score(f double precision[]) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 2.0 * f[3] + 1.0 * f[2] + 0.05 * coalesce(f[1], 0) + 0.02 * f[4]
             + 0.5 * f[10] + 0.2 * f[9] $$;

-- The readable reason: the source whose score is strongest relative to the other results.
CREATE OR REPLACE FUNCTION recsys.reason_text(p_source text, p_because text, p_category text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE p_source
        WHEN 'session' THEN 'you viewed it recently'
        WHEN 'cf' THEN format('similar to %s you viewed', p_because)
        WHEN 'vector' THEN 'matches your current interests'
        ELSE format('trending in category %s', coalesce(p_category, 'all'))
    END
$$;

CREATE OR REPLACE FUNCTION recsys.rank_candidates(
    p_user_key integer, p_k integer, p_category_key integer, p_exclude_purchased boolean
) RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_interest integer;
    v_cf integer;
BEGIN
    SELECT mv.version_id INTO v_interest FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    -- Static SQL over the generated serving functions: no dynamic EXECUTE on the request path,
    -- and one cached generic plan (a custom plan per call cost about 7 ms here).
    RETURN QUERY
    WITH bought AS (  -- the user's purchases, read once (not probed per candidate)
        SELECT DISTINCT e.item_key FROM recsys.events e
        WHERE p_exclude_purchased AND e.user_key = p_user_key
          AND e.behavior_key IN (SELECT b.behavior_key FROM recsys.behavior_types b
                                 WHERE b.name = 'buy')),
    f AS (
        SELECT c.*, recsys.serving_score(c.features) AS score
        FROM recsys.serving_candidates(p_user_key, 'infinity'::timestamptz, v_interest, v_cf,
                                       p_category_key, 100) c
        WHERE (p_category_key IS NULL OR c.top_category = p_category_key)
          AND c.item_key NOT IN (SELECT bought.item_key FROM bought)
        ORDER BY 6 DESC, c.features[4] DESC, c.item_key LIMIT p_k),
    strength AS (
        SELECT f.*,
               coalesce(f.features[3] / nullif(max(f.features[3]) OVER (), 0), 0) AS s_session,
               coalesce(f.features[2] / nullif(max(f.features[2]) OVER (), 0), 0) AS s_cf,
               CASE WHEN 'vector' = ANY(f.sources) THEN 0.5 ELSE 0 END AS s_vector,
               CASE WHEN 'trending' = ANY(f.sources) THEN 0.4 ELSE 0 END AS s_trending
        FROM f),
    s AS (
        SELECT st.*, CASE
                   WHEN st.s_session > 0 AND st.s_session >= greatest(st.s_cf, st.s_vector,
                                                                      st.s_trending)
                       THEN 'session'
                   WHEN st.s_cf > 0 AND st.s_cf >= greatest(st.s_vector, st.s_trending) THEN 'cf'
                   WHEN st.s_vector > 0 AND st.s_vector >= st.s_trending THEN 'vector'
                   ELSE 'trending' END AS source
        FROM strength st)
    SELECT i.item_id, s.score,
           (row_number() OVER (ORDER BY s.score DESC, s.features[4] DESC, s.item_key)
           )::integer,
           recsys.reason_text(s.source, bi.item_id, c.category_id)
    FROM s
    JOIN recsys.items i ON i.item_key = s.item_key
    LEFT JOIN recsys.items bi ON bi.item_key = s.because_item
    LEFT JOIN recsys.categories c ON c.category_key = s.top_category
    ORDER BY s.score DESC, s.features[4] DESC, s.item_key;  -- ties (e.g. cold start): trend
END
$$;
