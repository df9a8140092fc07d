-- Downgrade of revision 0006: the previous definitions (0005 / 0003).
CREATE OR REPLACE FUNCTION recsys.candidate_features_query(p_interest integer) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dim integer;
    v_part text;
    v_max_item integer;
BEGIN
    SELECT mv.dim, coalesce((mv.params->>'max_item_key')::integer, 2147483647)
    INTO v_dim, v_max_item FROM recsys.model_versions mv
    WHERE mv.version_id = p_interest AND mv.kind = 'interest';
    v_part := CASE WHEN v_dim IS NULL THEN NULL ELSE format('item_embeddings_v%s', p_interest) END;
    IF v_part IS NOT NULL AND to_regclass('recsys.' || v_part) IS NULL THEN
        v_part := NULL;
    END IF;
    RETURN format($q$
    WITH
    hist AS (SELECT e.item_key, e.category_key, e.ts, b.weight
             FROM recsys.events e JOIN recsys.behavior_types b USING (behavior_key)
             WHERE e.user_key = $1 AND e.ts < $2),
    now_ AS (SELECT coalesce(max(ts), $2) AS t FROM hist),
    recent AS (SELECT h.item_key, h.category_key, h.weight,
                      row_number() OVER (ORDER BY h.ts DESC) AS pos
               FROM (SELECT * FROM hist ORDER BY ts DESC LIMIT 20) h),
    state AS (SELECT s.state, s.next_categories, s.next_category_probs
              FROM recsys.user_states s WHERE s.user_key = $1 AND s.version_id = $3),
    shares AS (SELECT h.category_key,
                      sum(h.weight) / sum(sum(h.weight)) OVER () AS long_share,
                      sum(h.weight * exp(greatest(-700.0, -ln(2) * extract(epoch FROM n.t - h.ts)
                                                  / 86400.0)))
                        / sum(sum(h.weight * exp(greatest(-700.0, -ln(2)
                                  * extract(epoch FROM n.t - h.ts) / 86400.0)))) OVER ()
                        AS recent_share
               FROM hist h CROSS JOIN now_ n WHERE h.category_key IS NOT NULL
               GROUP BY h.category_key),
    predicted AS (SELECT p.category_key, p.prob
                  FROM state CROSS JOIN LATERAL unnest(state.next_categories,
                                                      state.next_category_probs)
                       AS p(category_key, prob)),
    moving AS (SELECT c.category_key FROM (
                   SELECT coalesce(s.category_key, p.category_key) AS category_key,
                          coalesce(s.recent_share, 0) + coalesce(p.prob, 0) AS w
                   FROM shares s FULL JOIN predicted p ON p.category_key = s.category_key) c
               ORDER BY c.w DESC LIMIT 3),
    vec AS (%s),
    cf AS (SELECT n.neighbor_key AS item_key,
                  sum(n.score * r.weight * power(0.85, r.pos - 1)) AS score,
                  (array_agg(r.item_key ORDER BY n.score * r.weight * power(0.85, r.pos - 1)
                             DESC))[1] AS because
           FROM recent r JOIN recsys.item_neighbors n
             ON n.version_id = $4 AND n.item_key = r.item_key
           GROUP BY n.neighbor_key ORDER BY 2 DESC LIMIT $6),
    session AS (SELECT r.item_key, sum(r.weight * power(0.85, r.pos - 1)) AS score
                FROM recent r GROUP BY r.item_key),
    trending AS (SELECT t.item_key, t.trend AS score, t.category_key
                 FROM (SELECT m.category_key FROM moving m
                       UNION SELECT $5 WHERE $5 IS NOT NULL) m
                 CROSS JOIN LATERAL (
                     SELECT st.item_key, st.trend, st.category_key FROM recsys.item_stats st
                     WHERE st.version_id = $4 AND st.category_key = m.category_key
                     ORDER BY st.trend DESC LIMIT 20) t
                 UNION ALL
                 SELECT * FROM (SELECT st.item_key, st.trend, st.category_key
                                FROM recsys.item_stats st WHERE st.version_id = $4
                                ORDER BY st.trend DESC LIMIT 20) g),
    cand AS (SELECT c.item_key, array_agg(DISTINCT c.source ORDER BY c.source) AS sources
             FROM (SELECT v.item_key, 'vector' AS source FROM vec v
                   UNION ALL SELECT cf.item_key, 'cf' FROM cf
                   UNION ALL SELECT s.item_key, 'session' FROM session s
                   UNION ALL SELECT t.item_key, 'trending' FROM trending t) c
             GROUP BY c.item_key),
    touched AS (SELECT h.item_key, max(h.ts) AS last_ts, max(h.weight) AS max_weight
                FROM hist h GROUP BY h.item_key),
    cat_touched AS (SELECT h.category_key, max(h.ts) AS last_ts FROM hist h
                    GROUP BY h.category_key)
    SELECT c.item_key, c.sources, cf.because, i.category_key,
           ARRAY[%s,
                 coalesce(cf.score, 0), coalesce(se.score, 0), coalesce(st.trend, 0),
                 ln(1 + coalesce(st.n_1d, 0)), ln(1 + coalesce(st.n_7d, 0)),
                 ln(1 + coalesce(st.n_total, 0)),
                 coalesce(sh.long_share, 0), coalesce(sh.recent_share, 0),
                 coalesce(pr.prob, 0),
                 extract(epoch FROM n.t - tu.last_ts) / 3600.0,
                 extract(epoch FROM n.t - ct.last_ts) / 3600.0,
                 coalesce(tu.max_weight, 0), st.age_days,
                 cardinality(c.sources)]::double precision[]
    FROM cand c
    JOIN recsys.items i ON i.item_key = c.item_key
    CROSS JOIN now_ n
    LEFT JOIN cf ON cf.item_key = c.item_key
    LEFT JOIN session se ON se.item_key = c.item_key
    -- LATERAL: one primary-key probe per candidate (a hash join would scan all item_stats)
    LEFT JOIN LATERAL (SELECT x.* FROM recsys.item_stats x
                       WHERE x.version_id = $4 AND x.item_key = c.item_key) st ON true
    LEFT JOIN shares sh ON sh.category_key = i.category_key
    LEFT JOIN predicted pr ON pr.category_key = i.category_key
    LEFT JOIN touched tu ON tu.item_key = c.item_key
    LEFT JOIN cat_touched ct ON ct.category_key = i.category_key
    %s
    WHERE $5 IS NULL OR i.category_key = $5
    $q$,
    CASE WHEN v_part IS NULL THEN
        'SELECT NULL::integer AS item_key, NULL::double precision AS score WHERE false'
    -- The query vector is a scalar subquery (an InitPlan parameter), so the HNSW index serves
    -- the ORDER BY; a join to the state would force a scan of every item.
    -- Items newer than the version (no embedding yet) score with their category's vector: up
    -- to the 1,000 newest of them, best 20 kept.
    ELSE format('SELECT e.item_key, -(e.embedding::vector(%1$s) <#> q.v) AS score'
                ' FROM (SELECT x.item_key, x.embedding FROM recsys.%2$I x'
                '       ORDER BY x.embedding::vector(%1$s) <#> (SELECT s.state::vector(%1$s)'
                '           FROM recsys.user_states s WHERE s.user_key = $1'
                '           AND s.version_id = $3) LIMIT $6) e,'
                ' (SELECT s.state::vector(%1$s) AS v FROM recsys.user_states s'
                '  WHERE s.user_key = $1 AND s.version_id = $3) q'
                ' UNION ALL SELECT * FROM ('
                '  SELECT n.item_key, -(ce.embedding::vector(%1$s) <#> q.v) AS score'
                '  FROM (SELECT i.item_key, i.category_key FROM recsys.items i'
                '        WHERE i.item_key > %3$s ORDER BY i.item_key DESC LIMIT 1000) n'
                '  JOIN recsys.category_embeddings ce'
                '    ON ce.version_id = $3 AND ce.category_key = n.category_key,'
                '  (SELECT s.state::vector(%1$s) AS v FROM recsys.user_states s'
                '   WHERE s.user_key = $1 AND s.version_id = $3) q'
                '  ORDER BY 2 DESC LIMIT 20) fresh', v_dim, v_part, v_max_item) END,
    CASE WHEN v_part IS NULL THEN 'NULL' ELSE
        '-(coalesce(ie.embedding, ce.embedding)::vector(' || v_dim
        || ') <#> (SELECT state::vector(' || v_dim || ') FROM state))' END,
    CASE WHEN v_part IS NULL THEN '' ELSE
        format('LEFT JOIN recsys.%I ie ON ie.version_id = $3 AND ie.item_key = c.item_key'
               ' LEFT JOIN LATERAL (SELECT x.embedding FROM recsys.category_embeddings x'
               '   WHERE ie.item_key IS NULL AND x.version_id = $3'
               '   AND x.category_key = i.category_key) ce ON true', v_part) END);
END
$$;

CREATE OR REPLACE FUNCTION recsys.candidate_features(
    p_user_key integer, p_at timestamptz, p_interest integer, p_cf integer,
    p_category_key integer DEFAULT NULL, p_per_source integer DEFAULT 100
) RETURNS TABLE (item_key integer, sources text[], because_item integer,
                 top_category integer, features double precision[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE recsys.candidate_features_query(p_interest)
    USING p_user_key, p_at, p_interest, p_cf, p_category_key, p_per_source;
END
$$;

CREATE OR REPLACE FUNCTION recsys.rank_candidates(
    p_user_key integer, p_k integer, p_category_key integer, p_exclude_purchased boolean
) RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_interest integer;
    v_cf integer;
BEGIN
    SELECT mv.version_id INTO v_interest FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    -- Static SQL over the generated serving functions: no dynamic EXECUTE on the request path.
    -- Custom plans measured faster than a cached generic plan here (the cost is execution).
    RETURN QUERY
    WITH f AS (
        SELECT c.*, recsys.serving_score(c.features) AS score
        FROM recsys.serving_candidates(p_user_key, 'infinity'::timestamptz, v_interest, v_cf,
                                       p_category_key, 100) c
        WHERE NOT (p_exclude_purchased AND EXISTS (
            SELECT 1 FROM recsys.events e JOIN recsys.behavior_types b USING (behavior_key)
            WHERE e.user_key = p_user_key AND e.item_key = c.item_key AND b.name = 'buy'))
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

CREATE OR REPLACE FUNCTION recsys.install_serving() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_interest integer;
    v_ranker integer;
    v_schema text;
    v_scorer text := 'recsys.default_rank_score';
BEGIN
    SELECT mv.version_id INTO v_interest FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    SELECT mv.version_id INTO v_ranker FROM recsys.model_versions mv
    WHERE mv.kind = 'ranker' AND mv.active;
    IF v_ranker IS NOT NULL AND to_regprocedure(
            format('recsys.ranker_score_v%s(double precision[])', v_ranker)) IS NOT NULL THEN
        v_scorer := format('recsys.%I', 'ranker_score_v' || v_ranker);
    END IF;
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION recsys.serving_candidates(
            p_user_key integer, p_at timestamptz, p_interest integer, p_cf integer,
            p_category_key integer, p_per_source integer)
        RETURNS TABLE (item_key integer, sources text[], because_item integer,
                       top_category integer, features double precision[])
        LANGUAGE plpgsql STABLE SET search_path = pg_catalog, %I, pg_temp
        SET hnsw.ef_search = 120 SET plan_cache_mode = force_custom_plan
        AS %L$f$, v_schema,
        'BEGIN RETURN QUERY ' || recsys.candidate_features_query(v_interest) || '; END');
    EXECUTE format('CREATE OR REPLACE FUNCTION recsys.serving_score(f double precision[])'
                   ' RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE'
                   ' AS %L', format('SELECT %s(f)', v_scorer));
END
$$;

-- candidate_features was replaced above: pin its search_path to the vector schema again.
DO $do$
DECLARE
    v_schema text;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    EXECUTE format('ALTER FUNCTION recsys.candidate_features(integer, timestamptz, integer, '
                   'integer, integer, integer) SET search_path = pg_catalog, %I, pg_temp',
                   v_schema);
    EXECUTE 'ALTER FUNCTION recsys.candidate_features(integer, timestamptz, integer, integer, '
            'integer, integer) SET hnsw.ef_search = 120';
    EXECUTE 'ALTER FUNCTION recsys.recommend(text, integer, text, boolean) '
            'RESET plan_cache_mode';
END
$do$;

SELECT recsys.install_serving();
