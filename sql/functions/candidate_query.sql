-- The text of the candidate-and-feature query, with the interest version's embedding partition
-- and dimension filled in; parameters $1 user_key, $2 as-of time, $3 interest version, $4 CF
-- version, $5 category (or NULL: callers filter top_category), $6 candidates per source.
-- Times are measured back from the user's latest event before $2, so an old log served today
-- gets the features it was trained on. Candidates come from these sources:
--   vector   - the interest model: its stay part for the user's recent items (log p_stay + log
--              of their share of the stay attention) and nearest items to the user's state
--              (HNSW, inner product; items newer than the version use their category's vector)
--   cf       - CF neighbours of the user's latest 20 events, read live from recsys.events
--   session  - the user's own latest 20 items, and the best 50 of all their items (repeat)
--   trending - trending items of the 3 categories the user is moving toward, and overall
-- Feature order is recsys.ranker_feature_names(); feature 1 (vector_score) is the model's
-- log-probability of the item: the stay part for recent items, else migrate_offset + <[u, 1],
-- [e_i, b_i]> (migrate_offset = log(1 - p_stay) - log Z), the HNSW order.
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
    -- decay 0.85 per step back, in float8 (power() of the numeric literal was slow)
    recent AS (SELECT h.item_key, h.category_key, h.weight,
                      power(0.85::double precision,
                            (row_number() OVER (ORDER BY h.ts DESC) - 1)::double precision)
                        AS decay
               FROM (SELECT * FROM hist ORDER BY ts DESC LIMIT 20) h),
    state AS (SELECT s.state, s.next_categories, s.next_category_probs,
                     coalesce(s.migrate_offset, 0) AS migrate_offset
              FROM recsys.user_states s WHERE s.user_key = $1 AND s.version_id = $3),
    -- the model's stay part: log p_stay + log of the attention mass of each recent item
    stay AS (%s),
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
    -- because: the recent item contributing most (max of [contribution, item] pairs: a plain
    -- aggregate, so the grouping can hash instead of sorting every group)
    -- the neighbours of each recent item by a primary-key probe (LATERAL ... OFFSET 0 keeps
    -- it a probe: a plain join was hashed over the whole version when the planner's
    -- statistics did not know it yet, 2.5M rows and 500 ms a call at 10M events)
    cf AS (SELECT x.neighbor_key AS item_key, sum(x.contribution) AS score,
                  (max(ARRAY[x.contribution, x.item_key::double precision]))[2]::integer
                    AS because
           FROM (SELECT n.neighbor_key, r.item_key,
                        n.score * r.weight * r.decay AS contribution
                 FROM recent r CROSS JOIN LATERAL (
                     SELECT n.neighbor_key, n.score FROM recsys.item_neighbors n
                     WHERE n.version_id = $4 AND n.item_key = r.item_key OFFSET 0) n) x
           GROUP BY x.neighbor_key ORDER BY 2 DESC LIMIT $6),
    session AS (SELECT r.item_key, sum(r.weight * r.decay) AS score
                FROM recent r GROUP BY r.item_key),
    -- repeat: all of the user's own items, behavior-weighted, halving every 25 events back;
    -- the best 50 are candidates too (labelled session)
    repeat_ AS (SELECT x.item_key, sum(x.weight * power(0.5::double precision,
                                                       (x.n - 1) / 25.0::double precision))
                                      AS score
                FROM (SELECT h.item_key, h.weight, row_number() OVER (ORDER BY h.ts DESC) AS n
                      FROM hist h) x
                GROUP BY x.item_key ORDER BY 2 DESC LIMIT 50),
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
                   UNION ALL SELECT sy.item_key, 'vector' FROM stay sy
                   UNION ALL SELECT cf.item_key, 'cf' FROM cf
                   UNION ALL SELECT s.item_key, 'session' FROM session s
                   UNION ALL SELECT rp.item_key, 'session' FROM repeat_ rp
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
                 cardinality(c.sources), coalesce(rp.score, 0)]::double precision[]
    FROM cand c
    JOIN recsys.items i ON i.item_key = c.item_key
    CROSS JOIN now_ n
    LEFT JOIN cf ON cf.item_key = c.item_key
    LEFT JOIN session se ON se.item_key = c.item_key
    LEFT JOIN repeat_ rp ON rp.item_key = c.item_key
    LEFT JOIN stay sy ON sy.item_key = c.item_key
    -- LATERAL: one primary-key probe per candidate (a hash join would scan all item_stats)
    LEFT JOIN LATERAL (SELECT x.* FROM recsys.item_stats x
                       WHERE x.version_id = $4 AND x.item_key = c.item_key) st ON true
    LEFT JOIN shares sh ON sh.category_key = i.category_key
    LEFT JOIN predicted pr ON pr.category_key = i.category_key
    LEFT JOIN touched tu ON tu.item_key = c.item_key
    LEFT JOIN cat_touched ct ON ct.category_key = i.category_key
    %s
    $q$,
    CASE WHEN v_part IS NULL THEN
        'SELECT NULL::integer AS item_key, NULL::double precision AS score WHERE false'
    ELSE format('SELECT z.item_key, max(z.log_stay) + ln(sum(exp(z.logit - z.lz))) AS score'
                ' FROM (SELECT w.*, w.mx + ln(sum(exp(w.logit - w.mx)) OVER ()) AS lz'
                '       FROM (SELECT x.item_key, s.log_stay,'
                '                    x.bias - (e.embedding <#> s.stay_query) AS logit,'
                '                    max(x.bias - (e.embedding <#> s.stay_query)) OVER () AS mx'
                '             FROM recsys.user_states s'
                '             CROSS JOIN LATERAL unnest(s.stay_items, s.stay_bias)'
                '                 AS x(item_key, bias)'
                '             JOIN recsys.%1$I e ON e.version_id = $3 AND e.item_key = x.item_key'
                '             WHERE s.user_key = $1 AND s.version_id = $3'
                '               AND s.log_stay IS NOT NULL) w) z'
                ' GROUP BY z.item_key', v_part) END,
    CASE WHEN v_part IS NULL THEN
        'SELECT NULL::integer AS item_key, NULL::double precision AS score WHERE false'
    -- The query vector is a scalar subquery (an InitPlan parameter), so the HNSW index serves
    -- the ORDER BY; a join to the state would force a scan of every item.
    -- Items newer than the version (no embedding yet) score with their category's vector: up
    -- to the 1,000 newest of them with an event before $2 (first_seen: their earliest event;
    -- a past cut-off must not see later items), best 20 kept.
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
                '        WHERE i.item_key > %3$s AND i.first_seen < $2'
                '        ORDER BY i.item_key DESC LIMIT 1000) n'
                '  JOIN recsys.category_embeddings ce'
                '    ON ce.version_id = $3 AND ce.category_key = n.category_key,'
                '  (SELECT s.state::vector(%1$s) AS v FROM recsys.user_states s'
                '   WHERE s.user_key = $1 AND s.version_id = $3) q'
                '  ORDER BY 2 DESC LIMIT 20) fresh', v_dim, v_part, v_max_item) END,
    -- the model's log-probability: the stay part for the user's recent items, else the migrate
    -- part, log(1 - p_stay) - log Z + <[u, 1], [e_i, b_i]>; coalesce evaluates the category
    -- lookup only for items without their own vector
    CASE WHEN v_part IS NULL THEN 'NULL' ELSE
        'coalesce(sy.score, (SELECT migrate_offset FROM state)'
        ' - (coalesce(ie.embedding, (SELECT x.embedding FROM recsys.category_embeddings x'
        ' WHERE x.version_id = $3 AND x.category_key = i.category_key))::vector(' || v_dim
        || ') <#> (SELECT state::vector(' || v_dim || ') FROM state)))' END,
    CASE WHEN v_part IS NULL THEN '' ELSE
        format('LEFT JOIN recsys.%I ie ON ie.version_id = $3 AND ie.item_key = c.item_key',
               v_part) END);
END
$$;
