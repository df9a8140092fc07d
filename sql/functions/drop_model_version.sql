-- Remove everything version p_version stored: its item_embeddings partition (with the HNSW
-- index), compiled ranker function, and its rows in every other table keyed by version_id.
-- p_keep_row: keep the registry row as 'retired' (its metrics stay for the report) instead of
-- deleting it. The active version is never removed.
CREATE OR REPLACE FUNCTION recsys.drop_model_version(p_version integer, p_keep_row boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_active boolean;
    v_table text;
BEGIN
    SELECT mv.active INTO v_active FROM recsys.model_versions mv
    WHERE mv.version_id = p_version FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v_active THEN
        RAISE EXCEPTION 'model version % is active: activate another version first', p_version
            USING ERRCODE = 'object_in_use';
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS recsys.%I', 'item_embeddings_v' || p_version);
    EXECUTE format('DROP FUNCTION IF EXISTS recsys.%I(double precision[])',
                   'ranker_score_v' || p_version);
    -- every other per-version table (user_states, item_neighbors, item_stats, model_blobs,
    -- and those later revisions add)
    FOR v_table IN
        SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'recsys' AND a.attname = 'version_id' AND NOT a.attisdropped
          AND c.relkind = 'r' AND NOT c.relispartition
          AND c.relname NOT IN ('model_versions', 'model_activations')
        ORDER BY c.relname
    LOOP
        EXECUTE format('DELETE FROM recsys.%I WHERE version_id = $1', v_table) USING p_version;
    END LOOP;
    -- precomputed candidates name their versions in three columns
    DELETE FROM recsys.user_candidates uc
    WHERE p_version IN (uc.interest_version, uc.cf_version, uc.ranker_version);
    IF p_keep_row THEN
        UPDATE recsys.model_versions SET status = 'retired' WHERE version_id = p_version;
    ELSE
        DELETE FROM recsys.model_versions WHERE version_id = p_version;
    END IF;
    RETURN true;
END
$$;
