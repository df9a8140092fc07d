-- The k argument of the functions apps call (recommend, similar_items,
-- recommend_for_session): between 1 and 1000, else an error that names the caller.
CREATE OR REPLACE FUNCTION recsys.check_k(p_caller text, p_k integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_k IS NULL OR p_k < 1 OR p_k > 1000 THEN
        RAISE EXCEPTION '%: k must be between 1 and 1000, got %', p_caller,
            coalesce(p_k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
