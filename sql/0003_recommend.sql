-- Recommendation (revision 0003): CF neighbours and item statistics per model version, the one
-- feature function shared by ranker training and serving, and the public API.

CREATE TABLE recsys.item_neighbors (
    version_id   integer NOT NULL,
    item_key     integer NOT NULL,
    neighbor_key integer NOT NULL,
    score        real NOT NULL,
    PRIMARY KEY (version_id, item_key, neighbor_key)
);

-- Popularity of each item as of the CF version's time (`params.as_of`): event counts over the
-- last day, week and all history before it, a trend score and the item's age.
CREATE TABLE recsys.item_stats (
    version_id   integer NOT NULL,
    item_key     integer NOT NULL,
    category_key integer,
    n_1d         real NOT NULL,
    n_7d         real NOT NULL,
    n_total      real NOT NULL,
    trend        real NOT NULL,
    age_days     real NOT NULL,
    PRIMARY KEY (version_id, item_key)
);
CREATE INDEX item_stats_trending_idx ON recsys.item_stats (version_id, category_key, trend DESC);
CREATE INDEX item_stats_global_trending_idx ON recsys.item_stats (version_id, trend DESC);

-- trend = (n_1d + 1) / (n_7d / 7 + 1) * ln(2 + n_1d): faster than its weekly pace, and busy.
CREATE FUNCTION recsys.refresh_item_stats(p_version integer, p_as_of timestamptz) RETURNS bigint
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

-- The features of (user, candidate, time): THE function both ranker training (at a past cut-off,
-- with model versions built as of that time) and serving (now, active versions) call.
-- Times are measured back from the user's latest event before p_at, so an old log served today
-- gets the same features it was trained on. Candidates come from four sources:
--   vector   - nearest items to the user's interest state (HNSW, inner product)
--   cf       - CF neighbours of the user's latest 20 events, read live from recsys.events
--   session  - the user's own latest 20 items (re-views are frequent in shop logs)
--   trending - trending items of the 3 categories the user is moving toward, and overall
-- Feature order is recsys.ranker_feature_names().
CREATE FUNCTION recsys.ranker_feature_names() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['vector_score', 'cf_score', 'session_score', 'trend_score', 'log_pop_1d',
                   'log_pop_7d', 'log_pop_total', 'category_long_share',
                   'category_recent_share', 'category_predicted_share', 'hours_since_item',
                   'hours_since_category', 'max_behavior_weight_on_item', 'item_age_days',
                   'n_sources'] $$;

-- The text of the candidate-and-feature query, with the interest version's embedding partition
-- and dimension filled in; parameters $1 user_key, $2 as-of time, $3 interest version, $4 CF
-- version, $5 category filter (or NULL), $6 candidates per source. candidate_features runs it
-- dynamically (ranker training, any versions); install_serving bakes it into the static
-- serving function, so serving and training run the very same SQL.
CREATE FUNCTION recsys.candidate_features_query(p_interest integer) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dim integer;
    v_part text;
BEGIN
    SELECT mv.dim INTO v_dim FROM recsys.model_versions mv
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
                      sum(h.weight * exp(-ln(2) * extract(epoch FROM n.t - h.ts) / 86400.0))
                        / sum(sum(h.weight * exp(-ln(2) * extract(epoch FROM n.t - h.ts)
                                                 / 86400.0))) OVER () AS recent_share
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
    ELSE format('SELECT e.item_key, -(e.embedding::vector(%1$s) <#> q.v) AS score'
                ' FROM (SELECT x.item_key, x.embedding FROM recsys.%2$I x'
                '       ORDER BY x.embedding::vector(%1$s) <#> (SELECT s.state::vector(%1$s)'
                '           FROM recsys.user_states s WHERE s.user_key = $1'
                '           AND s.version_id = $3) LIMIT $6) e,'
                ' (SELECT s.state::vector(%1$s) AS v FROM recsys.user_states s'
                '  WHERE s.user_key = $1 AND s.version_id = $3) q', v_dim, v_part) END,
    CASE WHEN v_part IS NULL THEN 'NULL' ELSE
        '-(ie.embedding::vector(' || v_dim || ') <#> (SELECT state::vector(' || v_dim
        || ') FROM state))' END,
    CASE WHEN v_part IS NULL THEN '' ELSE
        format('LEFT JOIN recsys.%I ie ON ie.version_id = $3 AND ie.item_key = c.item_key',
               v_part) END);
END
$$;

CREATE FUNCTION recsys.candidate_features(
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

-- Used until a ranker version is trained: a fixed blend of the source scores.
CREATE FUNCTION recsys.default_rank_score(f double precision[]) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 2.0 * f[3] + 1.0 * f[2] + 0.05 * coalesce(f[1], 0) + 0.02 * f[4]
             + 0.5 * f[10] + 0.2 * f[9] $$;

-- The readable reason: the source whose score is strongest relative to the other results.
CREATE FUNCTION recsys.reason_text(p_source text, p_because text, p_category text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE p_source
        WHEN 'session' THEN 'you viewed it recently'
        WHEN 'cf' THEN format('similar to %s you viewed', p_because)
        WHEN 'vector' THEN 'matches your current interests'
        ELSE format('trending in category %s', coalesce(p_category, 'all'))
    END
$$;

CREATE FUNCTION recsys.rank_candidates(
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

-- (Re)creates the two serving functions for the active versions: serving_candidates (the
-- candidate query with the active interest version's partition baked in, static so its plan is
-- cached) and serving_score (the active compiled ranker, or the fixed blend). Called whenever a
-- version is activated, in the same transaction.
CREATE FUNCTION recsys.install_serving() RETURNS void
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
SELECT recsys.install_serving();

-- ---------------------------------------------------------------- public API (applications)

CREATE FUNCTION recsys.recommend(
    user_id text, k integer DEFAULT 10, category_id text DEFAULT NULL,
    exclude_purchased boolean DEFAULT true
) RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user integer;
    v_category integer;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'recommend: k must be between 1 and 1000, got %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF recommend.category_id IS NOT NULL THEN
        SELECT c.category_key INTO v_category FROM recsys.categories c
        WHERE c.category_id = recommend.category_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'recommend: unknown category %', quote_literal(recommend.category_id)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    -- An unknown (or NULL) user is not an error: they get cold-start results (trending items).
    SELECT u.user_key INTO v_user FROM recsys.users u WHERE u.user_id = recommend.user_id;
    RETURN QUERY SELECT * FROM recsys.rank_candidates(coalesce(v_user, -1), k, v_category,
                                                      coalesce(exclude_purchased, true));
END
$$;

-- Items most similar to one item: its CF neighbours, else its nearest embeddings.
-- (The output column is similar_item_id: PostgreSQL does not allow an input and an output
-- parameter with the same name.)
CREATE FUNCTION recsys.similar_items(item_id text, k integer DEFAULT 10)
RETURNS TABLE (similar_item_id text, score double precision, rank integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_item integer;
    v_cf integer;
    v_interest integer;
    v_dim integer;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'similar_items: k must be between 1 and 1000, got %',
            coalesce(k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.item_key INTO v_item FROM recsys.items i WHERE i.item_id = similar_items.item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'similar_items: unknown item %', quote_literal(similar_items.item_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    RETURN QUERY
    SELECT i.item_id, n.score::double precision,
           (row_number() OVER (ORDER BY n.score DESC, n.neighbor_key))::integer
    FROM recsys.item_neighbors n JOIN recsys.items i ON i.item_key = n.neighbor_key
    WHERE n.version_id = v_cf AND n.item_key = v_item
    ORDER BY n.score DESC, n.neighbor_key LIMIT k;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT mv.version_id, mv.dim INTO v_interest, v_dim FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    IF v_interest IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT i.item_id, -(e.embedding::vector(%1$s) <#> q.embedding::vector(%1$s)),'
        ' (row_number() OVER ())::integer'
        ' FROM (SELECT embedding FROM recsys.%2$I WHERE item_key = $1) q,'
        ' LATERAL (SELECT x.item_key, x.embedding FROM recsys.%2$I x WHERE x.item_key <> $1'
        '          ORDER BY x.embedding::vector(%1$s) <#> q.embedding::vector(%1$s) LIMIT $2) e'
        ' JOIN recsys.items i ON i.item_key = e.item_key',
        v_dim, 'item_embeddings_v' || v_interest)
    USING v_item, k;
END
$$;

-- Anonymous visitors: CF neighbours of the session's items (latest last, weighted more),
-- topped up with trending items of the session's categories.
CREATE FUNCTION recsys.recommend_for_session(item_ids text[], k integer DEFAULT 10)
RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cf integer;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'recommend_for_session: k must be between 1 and 1000, got %',
            coalesce(k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
    ORDER BY s.score DESC, s.item_key LIMIT k;
END
$$;

-- Functions that use pgvector's type and operators pin search_path to pg_catalog plus the
-- schema the vector extension lives in (public by default), and nothing else.
DO $do$
DECLARE
    v_schema text;
    v_fn text;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    FOREACH v_fn IN ARRAY ARRAY[
        'recsys.candidate_features(integer, timestamptz, integer, integer, integer, integer)',
        'recsys.recommend(text, integer, text, boolean)',
        'recsys.similar_items(text, integer)']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp',
                       v_fn, v_schema);
        -- HNSW returns at most ef_search rows: enough for the vector source's 100 candidates.
        EXECUTE format('ALTER FUNCTION %s SET hnsw.ef_search = 120', v_fn);
    END LOOP;
END
$do$;
