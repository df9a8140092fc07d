-- Used until a ranker version is trained: a fixed blend of the source scores.
CREATE OR REPLACE FUNCTION recsys.default_rank_score(f double precision[]) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 2.0 * f[3] + 1.0 * f[2] + 0.05 * coalesce(f[1], 0) + 0.02 * f[4]
             + 0.5 * f[10] + 0.2 * f[9] $$;

-- The readable reason, each one checkable against the data: an item of the user's own history
-- says what they did and when ("you bought it on 2017-11-28", the strongest behavior, its latest
-- date in UTC); otherwise the CF neighbour of a history item that contributes most ("similar to X
-- you viewed"), the interest model ("matches your current interests"), or the item's category's
-- trending list ("trending in category Y").
CREATE OR REPLACE FUNCTION recsys.reason_text(p_source text, p_because text, p_category text,
                                              p_behavior text, p_at timestamptz)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE p_source
        WHEN 'history' THEN format('you %s on %s', CASE p_behavior
                                       WHEN 'pv' THEN 'viewed it'
                                       WHEN 'fav' THEN 'saved it'
                                       WHEN 'cart' THEN 'added it to your cart'
                                       WHEN 'buy' THEN 'bought it'
                                       ELSE format('interacted with it (%s)', p_behavior) END,
                                   to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'))
        WHEN 'cf' THEN format('similar to %s you viewed', p_because)
        WHEN 'vector' THEN 'matches your current interests'
        ELSE format('trending in category %s', coalesce(p_category, 'all'))
    END
$$;

-- Revision 0012 gave reason_text and rank_candidates more arguments; their earlier argument
-- lists stay (no defaults on the new ones, so no call is ambiguous) as thin wrappers, so that a
-- release-0011 recommend in flight while the upgrade commits still finds what it calls.
CREATE OR REPLACE FUNCTION recsys.reason_text(p_source text, p_because text, p_category text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT recsys.reason_text(p_source, p_because, p_category, NULL, NULL) $$;

-- p_filter: attribute containment (items.attributes @> p_filter, the GIN index
-- items_attributes_idx can serve it); p_exclude_seen: drop every item the user touched.
-- Inactive items, exclusions in force (recsys.exclude_item) and these filters all apply before
-- the LIMIT, so k rows come back whenever k candidates pass them.
-- Candidates come from the user's precomputed row (recsys.user_candidates, written by
-- recsys.precompute_candidates) when it is current - no category asked, the active versions, the
-- user's event count and latest event id, their state's updated_at, the catalog's highest item
-- key - else from the live query (serving_candidates, scored by serving_score), which is then
-- not run at all otherwise (a one-time filter). Both give the same rows: the same query, scored by the same function,
-- and everything after it (filters, order, reasons, k) is shared.
CREATE OR REPLACE FUNCTION recsys.rank_candidates(
    p_user_key integer, p_k integer, p_category_key integer, p_exclude_purchased boolean,
    p_filter jsonb, p_exclude_seen boolean
) RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_interest integer;
    v_cf integer;
    v_ranker integer;
BEGIN
    SELECT mv.version_id INTO v_interest FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    SELECT mv.version_id INTO v_ranker FROM recsys.model_versions mv
    WHERE mv.kind = 'ranker' AND mv.active;
    -- Static SQL over the generated serving functions: no dynamic EXECUTE on the request path,
    -- and one cached generic plan (a custom plan per call cost about 7 ms here).
    RETURN QUERY
    WITH mine AS MATERIALIZED (  -- the user's events, read once: the precomputed row's key,
                                 -- what to hide, the reasons from their own history
        SELECT e.item_key, e.event_id, e.ts, b.name AS behavior, b.weight
        FROM recsys.events e JOIN recsys.behavior_types b ON b.behavior_key = e.behavior_key
        WHERE e.user_key = p_user_key),
    pre AS MATERIALIZED (
        SELECT uc.* FROM recsys.user_candidates uc
        CROSS JOIN (SELECT count(*) AS n, max(m.event_id) AS last_id FROM mine m) k
        WHERE uc.user_key = p_user_key AND p_category_key IS NULL
          AND uc.interest_version IS NOT DISTINCT FROM v_interest
          AND uc.cf_version IS NOT DISTINCT FROM v_cf
          AND uc.ranker_version IS NOT DISTINCT FROM v_ranker
          AND uc.n_events = k.n AND uc.last_event_id IS NOT DISTINCT FROM k.last_id
          AND uc.state_at IS NOT DISTINCT FROM (SELECT s.updated_at FROM recsys.user_states s
                                                 WHERE s.user_key = p_user_key
                                                   AND s.version_id = v_interest)
          AND uc.max_item_key IS NOT DISTINCT FROM (SELECT max(i.item_key) FROM recsys.items i)),
    cand AS (
        SELECT u.item_key, u.because_item, u.top_category, u.score, u.cf_score, u.trend, u.bits
        FROM pre CROSS JOIN LATERAL unnest(pre.item_keys, pre.because_items, pre.top_categories,
                                           pre.scores, pre.cf_scores, pre.trends,
                                           pre.source_bits)
             AS u(item_key, because_item, top_category, score, cf_score, trend, bits)
        UNION ALL
        SELECT c.item_key, c.because_item, c.top_category, recsys.serving_score(c.features),
               c.features[2], c.features[4],
               (CASE WHEN 'vector' = ANY (c.sources) THEN 1 ELSE 0 END
                + CASE WHEN 'trending' = ANY (c.sources) THEN 2 ELSE 0 END)::smallint
        FROM recsys.serving_candidates(p_user_key, 'infinity'::timestamptz, v_interest, v_cf,
                                       p_category_key, 100) c
        WHERE NOT EXISTS (SELECT 1 FROM pre)),
    hidden AS (  -- read once (not probed per candidate): purchases (or, with exclude_seen,
                 -- everything the user touched) and exclusions in force
        SELECT m.item_key FROM mine m
        WHERE p_exclude_seen OR (p_exclude_purchased AND m.behavior = 'buy')
        UNION
        SELECT x.item_key FROM recsys.exclusions x
        WHERE x.user_key = p_user_key AND (x.until IS NULL OR x.until > now())),
    f AS (
        SELECT c.*
        FROM cand c
        JOIN recsys.items it ON it.item_key = c.item_key
        WHERE (p_category_key IS NULL OR c.top_category = p_category_key)
          AND it.active
          AND (p_filter IS NULL OR c.item_key IN (SELECT m.item_key FROM recsys.items m
                                                  WHERE m.attributes @> p_filter))
          AND c.item_key NOT IN (SELECT hidden.item_key FROM hidden)
        ORDER BY c.score DESC, c.trend DESC, c.item_key LIMIT p_k),
    own AS (  -- the results from the user's own history: strongest behavior, its latest time
        SELECT DISTINCT ON (m.item_key) m.item_key, m.behavior, m.ts
        FROM mine m WHERE m.item_key IN (SELECT f.item_key FROM f)
        ORDER BY m.item_key, m.weight DESC, m.ts DESC),
    strength AS (
        SELECT f.*,
               coalesce(f.cf_score / nullif(max(f.cf_score) OVER (), 0), 0) AS s_cf,
               CASE WHEN f.bits & 1 <> 0 THEN 0.5 ELSE 0 END AS s_vector,
               CASE WHEN f.bits & 2 <> 0 THEN 0.4 ELSE 0 END AS s_trending
        FROM f),
    s AS (
        SELECT st.*, o.behavior, o.ts AS behavior_ts, CASE
                   WHEN o.item_key IS NOT NULL THEN 'history'
                   WHEN st.s_cf > 0 AND st.because_item IS NOT NULL
                        AND st.s_cf >= greatest(st.s_vector, st.s_trending) THEN 'cf'
                   WHEN st.s_vector > 0 AND st.s_vector >= st.s_trending THEN 'vector'
                   WHEN st.s_trending > 0 THEN 'trending'
                   ELSE 'vector' END AS source
        FROM strength st LEFT JOIN own o ON o.item_key = st.item_key)
    SELECT i.item_id, s.score,
           (row_number() OVER (ORDER BY s.score DESC, s.trend DESC, s.item_key))::integer,
           recsys.reason_text(s.source, bi.item_id, c.category_id, s.behavior, s.behavior_ts)
    FROM s
    JOIN recsys.items i ON i.item_key = s.item_key
    LEFT JOIN recsys.items bi ON bi.item_key = s.because_item
    LEFT JOIN recsys.categories c ON c.category_key = s.top_category
    ORDER BY s.score DESC, s.trend DESC, s.item_key;  -- ties (e.g. cold start): trend
END
$$;

CREATE OR REPLACE FUNCTION recsys.rank_candidates(
    p_user_key integer, p_k integer, p_category_key integer, p_exclude_purchased boolean
) RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM recsys.rank_candidates(p_user_key, p_k, p_category_key, p_exclude_purchased,
                                            NULL::jsonb, false) $$;
