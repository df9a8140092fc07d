-- Downgrade of revision 0006, after the functions it replaced were restored from the files of
-- the revisions that defined them (see migrations/versions/0006_serving_speed.py).
DO $do$
DECLARE
    v_schema text;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    EXECUTE format('ALTER FUNCTION recsys.candidate_features(integer, timestamptz, integer, '
                   'integer, integer, integer) SET search_path = pg_catalog, %I, pg_temp',
                   v_schema);
    EXECUTE 'ALTER FUNCTION recsys.candidate_features(integer, timestamptz, integer, integer, '
            'integer, integer) SET hnsw.ef_search = 120';
    EXECUTE 'ALTER FUNCTION recsys.recommend(text, integer, text, boolean) '
            'RESET plan_cache_mode';
END
$do$;
SELECT recsys.install_serving();
