-- The features of (user, candidate, time): THE function both ranker training (at a past cut-off,
-- with model versions built as of that time) and serving (now, active versions) call. Ranker
-- training calls this one (dynamic SQL, any versions); serving calls recsys.serving_candidates,
-- which recsys.install_serving generates from the very same query text (candidate_query.sql).
CREATE OR REPLACE FUNCTION recsys.candidate_features(
    p_user_key integer, p_at timestamptz, p_interest integer, p_cf integer,
    p_category_key integer DEFAULT NULL, p_per_source integer DEFAULT 100
) RETURNS TABLE (item_key integer, sources text[], because_item integer,
                 top_category integer, features double precision[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM recsys.raise_hnsw_ef_search(120);
    RETURN QUERY EXECUTE format('SELECT * FROM (%s) c WHERE $5 IS NULL OR c.category_key = $5',
                                recsys.candidate_features_query(p_interest))
    USING p_user_key, p_at, p_interest, p_cf, p_category_key, p_per_source;
END
$$;
