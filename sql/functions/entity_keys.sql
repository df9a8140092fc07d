-- Key of a category/user/item by external id, created when new.
CREATE OR REPLACE FUNCTION recsys.category_key_for(p_category_id text) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_key integer;
BEGIN
    IF p_category_id IS NULL THEN RETURN NULL; END IF;
    SELECT category_key INTO v_key FROM recsys.categories WHERE category_id = p_category_id;
    IF NOT FOUND THEN
        INSERT INTO recsys.categories (category_id) VALUES (p_category_id)
        ON CONFLICT (category_id) DO NOTHING RETURNING category_key INTO v_key;
        IF v_key IS NULL THEN
            SELECT category_key INTO v_key FROM recsys.categories WHERE category_id = p_category_id;
        END IF;
    END IF;
    RETURN v_key;
END
$$;

CREATE OR REPLACE FUNCTION recsys.user_key_for(p_user_id text, p_ts timestamptz) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_key integer;
BEGIN
    SELECT user_key INTO v_key FROM recsys.users WHERE user_id = p_user_id;
    IF NOT FOUND THEN
        INSERT INTO recsys.users (user_id, first_seen) VALUES (p_user_id, p_ts)
        ON CONFLICT (user_id) DO NOTHING RETURNING user_key INTO v_key;
        IF v_key IS NULL THEN
            SELECT user_key INTO v_key FROM recsys.users WHERE user_id = p_user_id;
        END IF;
    END IF;
    RETURN v_key;
END
$$;

CREATE OR REPLACE FUNCTION recsys.item_key_for(p_item_id text, p_category_key integer, p_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_key integer; v_cat integer; v_first timestamptz;
BEGIN
    SELECT item_key, category_key, first_seen INTO v_key, v_cat, v_first
    FROM recsys.items WHERE item_id = p_item_id;
    IF NOT FOUND THEN
        INSERT INTO recsys.items (item_id, category_key, first_seen)
        VALUES (p_item_id, p_category_key, p_ts)
        ON CONFLICT (item_id) DO NOTHING RETURNING item_key INTO v_key;
        IF v_key IS NULL THEN
            SELECT item_key INTO v_key FROM recsys.items WHERE item_id = p_item_id;
        END IF;
    ELSIF (v_cat IS NULL AND p_category_key IS NOT NULL) OR v_first IS NULL OR v_first > p_ts THEN
        -- first_seen: the earliest event (a catalog item has none until its first event)
        UPDATE recsys.items SET category_key = coalesce(category_key, p_category_key),
                                first_seen = least(first_seen, p_ts)
        WHERE item_key = v_key;
    END IF;
    RETURN v_key;
END
$$;
