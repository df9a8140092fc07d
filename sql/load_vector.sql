-- Load pgvector's shared library in this session (run by migrations/env.py before any revision).
-- Its settings (hnsw.ef_search) exist only once the library is loaded; before that the name is
-- a placeholder, and a role that is not a superuser may not name a placeholder in ALTER
-- FUNCTION ... SET or RESET ("permission denied to set parameter"), which revisions 0003 and
-- 0006 (and the downgrade of 0008) do. LOAD needs a superuser; calling one of the extension's C
-- functions loads the library for anyone. Nothing happens when the extension is not installed.
DO $do$
DECLARE
    v_schema text;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    IF v_schema IS NOT NULL THEN
        EXECUTE format('SELECT %L::%I.vector', '[0]', v_schema);
    END IF;
END
$do$;
