-- Items most similar to one item: its CF neighbours, else its nearest embeddings.
-- Inactive items (recsys.set_item_active) are never returned.
-- (The output column is similar_item_id: PostgreSQL does not allow an input and an output
-- parameter with the same name.)
CREATE OR REPLACE FUNCTION recsys.similar_items(item_id text, k integer DEFAULT 10)
RETURNS TABLE (similar_item_id text, score double precision, rank integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_item integer;
    v_cf integer;
    v_interest integer;
    v_dim integer;
BEGIN
    PERFORM recsys.check_k('similar_items', k);
    SELECT i.item_key INTO v_item FROM recsys.items i WHERE i.item_id = similar_items.item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'similar_items: unknown item %', quote_literal(similar_items.item_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    RETURN QUERY
    SELECT i.item_id, n.score::double precision,
           (row_number() OVER (ORDER BY n.score DESC, n.neighbor_key))::integer
    FROM recsys.item_neighbors n JOIN recsys.items i ON i.item_key = n.neighbor_key
    WHERE n.version_id = v_cf AND n.item_key = v_item AND i.active
    ORDER BY n.score DESC, n.neighbor_key LIMIT k;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT mv.version_id, mv.dim INTO v_interest, v_dim FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    IF v_interest IS NULL THEN
        RETURN;
    END IF;
    PERFORM recsys.raise_hnsw_ef_search(120);
    RETURN QUERY EXECUTE format(
        'SELECT i.item_id, -(e.embedding::vector(%1$s) <#> q.embedding::vector(%1$s)),'
        ' (row_number() OVER ())::integer'
        ' FROM (SELECT embedding FROM recsys.%2$I WHERE item_key = $1) q,'
        ' LATERAL (SELECT x.item_key, x.embedding FROM recsys.%2$I x WHERE x.item_key <> $1'
        '          AND (SELECT a.active FROM recsys.items a WHERE a.item_key = x.item_key)'
        '          ORDER BY x.embedding::vector(%1$s) <#> q.embedding::vector(%1$s) LIMIT $2) e'
        ' JOIN recsys.items i ON i.item_key = e.item_key',
        v_dim, 'item_embeddings_v' || v_interest)
    USING v_item, k;
END
$$;
