-- Stay or migrate (revision 0009): user states carry the model's whole next-item distribution
-- (recsys_db/interest/encoder.py), and the vector source serves it.
--
-- P(next = i) = p_stay * P_stay(i) + (1 - p_stay) * P_migrate(i). For the user's recent items
-- (`stay_items`, with the slot biases `stay_bias`) the score is log p_stay + log of their share
-- of the stay attention, softmax over slots of <stay_query, item vector> + bias, computed here
-- from the stored item vectors. For any other item it is migrate_offset + <[u, 1], [e_i, b_i]>
-- (migrate_offset = log(1 - p_stay) - log Z): the HNSW order. `vector_score` (feature 1) is
-- that log-probability; the vector source's candidates are the recent items plus the HNSW
-- neighbours. p_migrate: the probability that the next event's category is none of the
-- categories of the user's last events.

ALTER TABLE recsys.user_states
    ADD COLUMN p_migrate real,
    ADD COLUMN stay_query vector,
    ADD COLUMN stay_items integer[],
    ADD COLUMN stay_bias real[],
    ADD COLUMN log_stay double precision,
    ADD COLUMN migrate_offset double precision;

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
    cf AS (SELECT x.neighbor_key AS item_key, sum(x.contribution) AS score,
                  (max(ARRAY[x.contribution, x.item_key::double precision]))[2]::integer
                    AS because
           FROM (SELECT n.neighbor_key, r.item_key,
                        n.score * r.weight * r.decay AS contribution
                 FROM recent r JOIN recsys.item_neighbors n
                   ON n.version_id = $4 AND n.item_key = r.item_key) x
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

SELECT recsys.install_serving();

-- interest_drift gains p_migrate: the probability that the user's next event leaves the
-- categories of their last events (NULL before a model with the stay-or-migrate heads).
DROP FUNCTION recsys.interest_drift(text, interval);
CREATE FUNCTION recsys.interest_drift(user_id text, half_life interval DEFAULT '1 day')
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

-- "Who is about to change interests?": users by p_migrate under the active interest model.
CREATE FUNCTION recsys.about_to_migrate(k integer DEFAULT 100, min_p double precision DEFAULT 0)
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

DO $do$
DECLARE
    v_role text := (SELECT value #>> '{}' FROM recsys.meta WHERE key = 'app_role');
BEGIN
    REVOKE ALL ON FUNCTION recsys.interest_drift(text, interval),
        recsys.about_to_migrate(integer, double precision) FROM PUBLIC;
    IF v_role IS NOT NULL AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION recsys.interest_drift(text, interval),'
                       ' recsys.about_to_migrate(integer, double precision) TO %I', v_role);
    END IF;
END
$do$;
