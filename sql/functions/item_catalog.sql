-- The catalog's availability switch for applications: an inactive item is never recommended
-- (recommend, similar_items, recommend_for_session filter on recsys.items.active).
-- Returns the item's previous state.
CREATE OR REPLACE FUNCTION recsys.set_item_active(item_id text, active boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_was boolean;
BEGIN
    IF active IS NULL THEN
        RAISE EXCEPTION 'set_item_active: active must be true or false, got NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.active INTO v_was FROM recsys.items i
    WHERE i.item_id = set_item_active.item_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'set_item_active: unknown item %',
            coalesce(quote_literal(set_item_active.item_id), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE recsys.items i SET active = set_item_active.active
    WHERE i.item_id = set_item_active.item_id AND i.active IS DISTINCT FROM set_item_active.active;
    RETURN v_was;
END
$$;
