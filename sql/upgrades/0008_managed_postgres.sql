-- Release 0007 -> 0008, after the functions of sql/functions/ it names were applied: recommend
-- sheds its hnsw.ef_search setting (only a superuser may name pgvector's setting in a SET clause
-- before the library is loaded: sql/functions/hnsw.sql), and only recsys-db's own functions may
-- raise it.
-- (By name: on a database the baseline made, recommend has revision 0012's argument list.)
DO $do$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN SELECT p.oid::regprocedure FROM pg_proc p
                WHERE p.pronamespace = 'recsys'::regnamespace AND p.proname = 'recommend'
    LOOP
        EXECUTE format('ALTER FUNCTION %s RESET hnsw.ef_search', v_fn);
    END LOOP;
END
$do$;
REVOKE ALL ON FUNCTION recsys.raise_hnsw_ef_search(integer) FROM PUBLIC;
