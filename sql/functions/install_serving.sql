-- (Re)creates the two serving functions for the active versions: serving_candidates (the
-- candidate query with the active interest version's partition and dimension baked in, static so
-- its plan is cached) and serving_score (the active compiled ranker, or the fixed blend). Called
-- whenever a version is activated, in the same transaction.
--
-- serving_candidates serves the interest version baked into it, whatever version its caller
-- passes: rank_candidates reads the active versions under its statement's snapshot, but
-- PostgreSQL looks functions up in the catalog as it is now, so a call in flight when an
-- activation commits could pass the old version to the new function (`expected 13 dimensions,
-- not 9`). The CF version and the ranker need no such care: item_neighbors and item_stats are
-- read by version id, and serving_score is generated with the ranker it calls.
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
        SET plan_cache_mode = force_generic_plan
        AS %L$f$, v_schema,
        format('BEGIN PERFORM recsys.raise_hnsw_ef_search(120); p_interest := %s; RETURN QUERY ',
               coalesce(v_interest::text, 'NULL'))
        || recsys.candidate_features_query(v_interest) || '; END');
    EXECUTE format('CREATE OR REPLACE FUNCTION recsys.serving_score(f double precision[])'
                   ' RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE'
                   ' AS %L', format('SELECT %s(f)', v_scorer));
END
$$;
