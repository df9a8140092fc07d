-- "Not interested", "bought elsewhere": recsys.recommend never returns the item to the user
-- while the exclusion holds (until NULL: for good). Excluding again replaces `until`.
CREATE OR REPLACE FUNCTION recsys.exclude_item(user_id text, item_id text,
                                               until timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user integer;
    v_item integer;
BEGIN
    SELECT u.user_key INTO v_user FROM recsys.users u WHERE u.user_id = exclude_item.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'exclude_item: unknown user %',
            coalesce(quote_literal(exclude_item.user_id), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.item_key INTO v_item FROM recsys.items i WHERE i.item_id = exclude_item.item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'exclude_item: unknown item %',
            coalesce(quote_literal(exclude_item.item_id), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO recsys.exclusions AS x (user_key, item_key, until)
    VALUES (v_user, v_item, exclude_item.until)
    ON CONFLICT (user_key, item_key) DO UPDATE SET until = excluded.until, created_at = now();
END
$$;
