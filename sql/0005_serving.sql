-- Serving fixes (revision 0005).
-- 1. Items without an embedding yet (new since the interest version was trained) get a vector
--    from their category: the mean of the version's item vectors in that category
--    (recsys.category_embeddings, written with each version). They become vector candidates
--    and get a vector_score feature like any other item.
-- 2. Time decay no longer fails for histories spanning years: exp() of a very negative number
--    raises "underflow" in PostgreSQL instead of returning 0, so exponents are clamped at -700.

CREATE TABLE recsys.category_embeddings (
    version_id   integer NOT NULL,
    category_key integer NOT NULL,
    embedding    vector NOT NULL,
    n_items      integer NOT NULL,
    PRIMARY KEY (version_id, category_key)
);

-- Category vectors of interest version p_version: the mean of its item vectors ([w, b], so
-- state . mean = the mean score of the category's items for that user).
CREATE FUNCTION recsys.refresh_category_embeddings(p_version integer) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema text;
    v_rows bigint;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    DELETE FROM recsys.category_embeddings WHERE version_id = p_version;
    EXECUTE format('INSERT INTO recsys.category_embeddings'
                   ' SELECT $1, i.category_key, %1$I.avg(e.embedding), count(*)'
                   ' FROM recsys.item_embeddings e JOIN recsys.items i USING (item_key)'
                   ' WHERE e.version_id = $1 AND i.category_key IS NOT NULL'
                   ' GROUP BY i.category_key', v_schema) USING p_version;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- Versions trained before this revision: their category vectors now; no max_item_key in their
-- params, so they treat no item as new (as before).
SELECT recsys.refresh_category_embeddings(mv.version_id) FROM recsys.model_versions mv
WHERE mv.kind = 'interest' AND mv.status = 'ready'
  AND to_regclass(format('recsys.item_embeddings_v%s', mv.version_id)) IS NOT NULL;

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

SELECT recsys.install_serving();
