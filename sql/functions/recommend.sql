-- The public API: the top k items for a user (cold start: trending items), with a reason each.
-- The ranking is recsys.rank_candidates over the generated serving functions (install_serving).
-- filter: attribute containment ('{"brand": "acme"}'); exclude_seen: nothing the user touched.
-- Inactive items and the user's exclusions (recsys.exclude_item) are never returned.
CREATE OR REPLACE FUNCTION recsys.recommend(
    user_id text, k integer DEFAULT 10, category_id text DEFAULT NULL,
    exclude_purchased boolean DEFAULT true, filter jsonb DEFAULT NULL,
    exclude_seen boolean DEFAULT false
) RETURNS TABLE (item_id text, score double precision, rank integer, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_user integer;
    v_category integer;
BEGIN
    PERFORM recsys.check_k('recommend', k);
    IF recommend.category_id IS NOT NULL THEN
        SELECT c.category_key INTO v_category FROM recsys.categories c
        WHERE c.category_id = recommend.category_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'recommend: unknown category %', quote_literal(recommend.category_id)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF recommend.filter IS NOT NULL AND jsonb_typeof(recommend.filter) <> 'object' THEN
        RAISE EXCEPTION 'recommend: filter must be a JSON object such as {"brand": "acme"}, got %',
            left(recommend.filter::text, 80) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- An unknown (or NULL) user is not an error: they get cold-start results (trending items).
    SELECT u.user_key INTO v_user FROM recsys.users u WHERE u.user_id = recommend.user_id;
    RETURN QUERY SELECT * FROM recsys.rank_candidates(coalesce(v_user, -1), k, v_category,
                                                      coalesce(exclude_purchased, true),
                                                      recommend.filter,
                                                      coalesce(exclude_seen, false));
END
$$;
