-- Anonymous visitors: CF neighbours of the session's items (latest last, weighted more),
-- topped up with trending items of the session's categories. Inactive items are never returned.
CREATE OR REPLACE FUNCTION recsys.recommend_for_session(item_ids text[], k integer DEFAULT 10)
RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cf integer;
BEGIN
    PERFORM recsys.check_k('recommend_for_session', k);
    IF item_ids IS NULL OR cardinality(item_ids) > 1000 THEN
        RAISE EXCEPTION 'recommend_for_session: item_ids must be an array of at most 1000 ids'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    RETURN QUERY
    WITH sess AS (
        SELECT i.item_key, i.category_key, i.item_id,
               power(0.85, cardinality(item_ids) - s.ord) AS w
        FROM unnest(item_ids) WITH ORDINALITY AS s(id, ord)
        JOIN recsys.items i ON i.item_id = s.id),
    cf AS (
        SELECT n.neighbor_key AS item_key, sum(n.score * s.w) AS score,
               (array_agg(s.item_id ORDER BY n.score * s.w DESC))[1] AS because
        FROM sess s JOIN recsys.item_neighbors n ON n.version_id = v_cf AND n.item_key = s.item_key
        WHERE n.neighbor_key NOT IN (SELECT item_key FROM sess)
        GROUP BY n.neighbor_key),
    trend AS (
        SELECT st.item_key, 1e-3 * st.trend AS score, c.category_id
        FROM recsys.item_stats st JOIN recsys.categories c ON c.category_key = st.category_key
        WHERE st.version_id = v_cf
          AND (st.category_key IN (SELECT category_key FROM sess) OR NOT EXISTS (SELECT 1 FROM sess))
          AND st.item_key NOT IN (SELECT item_key FROM sess)
        ORDER BY st.trend DESC LIMIT 100),
    scored AS (
        SELECT coalesce(cf.item_key, t.item_key) AS item_key,
               coalesce(cf.score, 0) + coalesce(t.score, 0) AS score,
               CASE WHEN cf.item_key IS NOT NULL THEN format('similar to %s you viewed', cf.because)
                    ELSE format('trending in category %s', t.category_id) END AS reason
        FROM cf FULL JOIN trend t ON t.item_key = cf.item_key)
    SELECT i.item_id, s.score, (row_number() OVER (ORDER BY s.score DESC, s.item_key))::integer,
           s.reason
    FROM scored s JOIN recsys.items i ON i.item_key = s.item_key
    WHERE i.active
    ORDER BY s.score DESC, s.item_key LIMIT k;
END
$$;
