-- Precomputed candidates: for each of p_user_keys, the live candidate query itself
-- (recsys.serving_candidates with no category, 100 per source, as rank_candidates calls it) scored
-- by recsys.serving_score, stored in recsys.user_candidates in ranking order, replacing the user's
-- row in this one statement. One code path: rank_candidates serves these rows only while what
-- they were computed from is current (the active interest, CF and ranker versions, the user's
-- event count and latest event id, the user's state of the active interest version (its
-- updated_at), the catalog's highest item key), else it runs the same query live. The features do not depend on the time of the request (they are measured back from the
-- user's latest event), and everything read at request time (active items, exclusions,
-- purchases, filters, reasons, k) is applied by rank_candidates to either path alike.
-- Called (recsys_db/interest/precompute.py) for the users whose states the worker advanced,
-- right after their states commit, and for every user after an activation.
-- Returns the number of users written (a user without any candidate gets no row).
CREATE OR REPLACE FUNCTION recsys.precompute_candidates(p_user_keys integer[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_interest integer;
    v_cf integer;
    v_ranker integer;
    v_rows integer;
BEGIN
    IF p_user_keys IS NULL OR cardinality(p_user_keys) > 10000 THEN
        RAISE EXCEPTION 'precompute_candidates: between 0 and 10000 user keys, got %',
            coalesce(cardinality(p_user_keys)::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT mv.version_id INTO v_interest FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    SELECT mv.version_id INTO v_ranker FROM recsys.model_versions mv
    WHERE mv.kind = 'ranker' AND mv.active;
    INSERT INTO recsys.user_candidates AS uc (
        user_key, interest_version, cf_version, ranker_version, n_events, last_event_id,
        max_item_key, state_at, computed_at, item_keys, scores, cf_scores, trends, because_items,
        top_categories, source_bits)
    SELECT u.user_key, v_interest, v_cf, v_ranker, ev.n, ev.last_id,
           (SELECT max(i.item_key) FROM recsys.items i),
           (SELECT s.updated_at FROM recsys.user_states s
            WHERE s.user_key = u.user_key AND s.version_id = v_interest), now(),
           array_agg(c.item_key ORDER BY c.score DESC, c.features[4] DESC, c.item_key),
           array_agg(c.score ORDER BY c.score DESC, c.features[4] DESC, c.item_key),
           array_agg(c.features[2] ORDER BY c.score DESC, c.features[4] DESC, c.item_key),
           array_agg(c.features[4] ORDER BY c.score DESC, c.features[4] DESC, c.item_key),
           array_agg(c.because_item ORDER BY c.score DESC, c.features[4] DESC, c.item_key),
           array_agg(c.top_category ORDER BY c.score DESC, c.features[4] DESC, c.item_key),
           array_agg((CASE WHEN 'vector' = ANY (c.sources) THEN 1 ELSE 0 END
                      + CASE WHEN 'trending' = ANY (c.sources) THEN 2 ELSE 0 END)::smallint
                     ORDER BY c.score DESC, c.features[4] DESC, c.item_key)
    FROM (SELECT DISTINCT k.user_key FROM unnest(p_user_keys) k(user_key)
          WHERE k.user_key IS NOT NULL) u
    -- counted as rank_candidates counts them (events with their behavior)
    CROSS JOIN LATERAL (SELECT count(*) AS n, max(e.event_id) AS last_id
                        FROM recsys.events e
                        JOIN recsys.behavior_types b ON b.behavior_key = e.behavior_key
                        WHERE e.user_key = u.user_key) ev
    CROSS JOIN LATERAL (SELECT sc.*, recsys.serving_score(sc.features) AS score
                        FROM recsys.serving_candidates(u.user_key, 'infinity'::timestamptz,
                                                       v_interest, v_cf, NULL, 100) sc) c
    GROUP BY u.user_key, ev.n, ev.last_id
    ON CONFLICT (user_key) DO UPDATE SET
        interest_version = excluded.interest_version, cf_version = excluded.cf_version,
        ranker_version = excluded.ranker_version, n_events = excluded.n_events,
        last_event_id = excluded.last_event_id, max_item_key = excluded.max_item_key,
        state_at = excluded.state_at,
        computed_at = excluded.computed_at, item_keys = excluded.item_keys,
        scores = excluded.scores, cf_scores = excluded.cf_scores, trends = excluded.trends,
        because_items = excluded.because_items, top_categories = excluded.top_categories,
        source_bits = excluded.source_bits;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
