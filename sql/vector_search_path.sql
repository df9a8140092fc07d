-- The functions that use pgvector's type and operators pin search_path to pg_catalog, the schema
-- the vector extension lives in (public by default) and pg_temp: nothing else. That schema is
-- known only at install time, so it is set here, after their files of sql/functions/ (which
-- CREATE OR REPLACE them with search_path = pg_catalog, pg_temp) - recsys_db.sqlfiles applies
-- this file after every sql/functions/ file. (The generated serving_candidates pins its own.)
DO $do$
DECLARE
    v_schema text := (SELECT extnamespace::regnamespace::text  -- quoted when it must be
                      FROM pg_extension WHERE extname = 'vector');
    v_fn regprocedure;
BEGIN
    FOR v_fn IN  -- by name, whatever the argument list (revision 0012 changed recommend's)
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'recsys'::regnamespace
          AND p.proname IN ('candidate_features', 'recommend', 'similar_items')
        ORDER BY p.oid
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %s, pg_temp',
                       v_fn, v_schema);
    END LOOP;
END
$do$;
