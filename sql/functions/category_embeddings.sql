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

-- Cold start: items of the catalog that have no event yet (first_seen NULL, loaded by
-- recsys-db ingest-items) and so no vector of their own in version p_version get the mean of
-- their category's vector and, for each of their attributes, the mean vector of the version's
-- items that share that attribute value (e.g. every item of brand "acme"). Run after
-- refresh_category_embeddings, once the version's partition holds the trained vectors; the
-- inserted rows serve the HNSW search, similar_items and the vector score like trained ones.
CREATE OR REPLACE FUNCTION recsys.cold_start_item_embeddings(p_version integer) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema text;
    v_rows bigint;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    EXECUTE format($q$
        WITH cold AS (
            SELECT i.item_key, i.category_key, i.attributes FROM recsys.items i
            WHERE i.first_seen IS NULL AND i.active
              AND NOT EXISTS (SELECT 1 FROM recsys.item_embeddings e
                              WHERE e.version_id = $1 AND e.item_key = i.item_key)),
        pairs AS (SELECT DISTINCT a.key, a.value FROM cold c, jsonb_each(c.attributes) a),
        pair_means AS (  -- items_attributes_idx serves the containment
            SELECT p.key, p.value, %1$I.avg(e.embedding) AS embedding
            FROM pairs p
            JOIN recsys.items i ON i.attributes @> jsonb_build_object(p.key, p.value)
            JOIN recsys.item_embeddings e ON e.version_id = $1 AND e.item_key = i.item_key
            GROUP BY p.key, p.value),
        parts AS (
            SELECT c.item_key, ce.embedding FROM cold c
            JOIN recsys.category_embeddings ce
              ON ce.version_id = $1 AND ce.category_key = c.category_key
            UNION ALL
            SELECT c.item_key, pm.embedding FROM cold c
            CROSS JOIN LATERAL jsonb_each(c.attributes) a
            JOIN pair_means pm ON pm.key = a.key AND pm.value = a.value)
        INSERT INTO recsys.item_embeddings (version_id, item_key, embedding)
        SELECT $1, p.item_key, %1$I.avg(p.embedding) FROM parts p GROUP BY p.item_key
        $q$, v_schema) USING p_version;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
