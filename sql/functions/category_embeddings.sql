-- Category vectors of interest version p_version: the mean of its item vectors ([w, b], so
-- state . mean = the mean score of the category's items for that user).
CREATE OR REPLACE FUNCTION recsys.refresh_category_embeddings(p_version integer) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema text;
    v_rows bigint;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    DELETE FROM recsys.category_embeddings WHERE version_id = p_version;
    EXECUTE format('INSERT INTO recsys.category_embeddings'
                   ' SELECT $1, i.category_key, %1$I.avg(e.embedding), count(*)'
                   ' FROM recsys.item_embeddings e JOIN recsys.items i USING (item_key)'
                   ' WHERE e.version_id = $1 AND i.category_key IS NOT NULL'
                   ' GROUP BY i.category_key', v_schema) USING p_version;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
