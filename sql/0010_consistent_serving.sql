-- Consistent serving during an activation (revision 0010): the generated serving function
-- serves the interest version it was generated for, whatever version its caller passes.
--
-- rank_candidates reads the active versions from recsys.model_versions under its statement's
-- snapshot, but PostgreSQL looks functions up in the catalog as it is now. A call in flight
-- when an activation commits could therefore pass the old active version to the new
-- serving_candidates, whose body names the new version's partition and casts user states to
-- the new dimension: `expected 13 dimensions, not 9` when the two versions' dimensions differ
-- (tests/test_live_upgrade.py saw 2 such failures in about 2,000 calls over 8 activations).
-- The body now sets p_interest to the version baked into it first, so the partition, the
-- dimension and the rows read always belong to one version. The CF version and the ranker need
-- no such care: item_neighbors and item_stats are read by version id, with no shape that could
-- clash, and serving_score is generated with the ranker it calls.

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

SELECT recsys.install_serving();
