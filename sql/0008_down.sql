-- Downgrade of revision 0008, after the functions it replaced were restored from the files of
-- the revisions that defined them (see migrations/versions/0008_managed_postgres.py): their
-- settings as revisions 0003 and 0006 left them. Naming hnsw.ef_search needs pgvector's library
-- loaded in this session, which migrations/env.py did.
DO $do$
DECLARE
    v_schema text;
    v_fn text;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    FOREACH v_fn IN ARRAY ARRAY[
        'recsys.candidate_features(integer, timestamptz, integer, integer, integer, integer)',
        'recsys.similar_items(text, integer)']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp',
                       v_fn, v_schema);
        EXECUTE format('ALTER FUNCTION %s SET hnsw.ef_search = 120', v_fn);
    END LOOP;
END
$do$;
-- recommend's settings in their original order: search_path, hnsw.ef_search, plan_cache_mode.
ALTER FUNCTION recsys.recommend(text, integer, text, boolean) RESET plan_cache_mode;
ALTER FUNCTION recsys.recommend(text, integer, text, boolean) SET hnsw.ef_search = 120;
ALTER FUNCTION recsys.recommend(text, integer, text, boolean)
    SET plan_cache_mode = force_generic_plan;
DROP FUNCTION recsys.raise_hnsw_ef_search(integer);
SELECT recsys.install_serving();
