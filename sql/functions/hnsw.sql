-- Functions that search HNSW indexes raise hnsw.ef_search in their body, not in a SET clause:
-- until pgvector's library is loaded the setting is a placeholder, and only a superuser may name
-- one in CREATE/ALTER FUNCTION ... SET. Raised to the end of the caller's transaction.
-- HNSW returns at most ef_search rows: the vector source wants 100 candidates.
CREATE OR REPLACE FUNCTION recsys.raise_hnsw_ef_search(p_at_least integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(nullif(current_setting('hnsw.ef_search', true), '')::integer, 0) < p_at_least
    THEN
        PERFORM set_config('hnsw.ef_search', p_at_least::text, true);
    END IF;
END
$$;
