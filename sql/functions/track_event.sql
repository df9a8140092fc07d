-- The application door: record one event. Returns its event_id, or NULL when the same event
-- (user, item, behavior, ts) is already stored or the user was forgotten (recsys.forget_user:
-- the event is skipped and counted in recsys.forgotten_users.skipped_events). Bad arguments
-- raise SQLSTATE 22023.
CREATE OR REPLACE FUNCTION recsys.track_event(
    user_id text, item_id text, behavior text,
    ts timestamptz DEFAULT now(), category_id text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user text := recsys.normalize_id(track_event.user_id);
    v_item text := recsys.normalize_id(track_event.item_id);
    v_cat  text := recsys.normalize_id(track_event.category_id);
    v_beh  text := recsys.normalize_id(track_event.behavior);
    v_behavior_key smallint;
    v_problem text;
    v_category_key integer;
    v_event_id bigint;
BEGIN
    SELECT b.behavior_key INTO v_behavior_key FROM recsys.behavior_types b WHERE b.name = v_beh;
    v_problem := recsys.event_problem(v_user, v_item, v_cat, v_beh, v_behavior_key IS NOT NULL,
                                      track_event.ts);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'track_event: %', v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a forgotten user: skip and count (the shared locks hold off a forget until we commit;
    -- see sql/functions/forgotten.sql)
    PERFORM pg_advisory_xact_lock_shared(recsys.forget_lock_space(), recsys.forget_items_lock());
    PERFORM pg_advisory_xact_lock_shared(recsys.forget_lock_space(),
                                         recsys.forget_lock_bucket(v_user));
    UPDATE recsys.forgotten_users f SET skipped_events = f.skipped_events + 1
    WHERE f.user_hash = recsys.user_id_hash(v_user);
    IF FOUND THEN
        RETURN NULL;
    END IF;
    v_category_key := recsys.category_key_for(v_cat);
    PERFORM recsys.ensure_events_partition(track_event.ts);
    INSERT INTO recsys.events AS e (user_key, item_key, behavior_key, ts, category_key)
    VALUES (recsys.user_key_for(v_user, track_event.ts),
            recsys.item_key_for(v_item, v_category_key, track_event.ts),
            v_behavior_key, track_event.ts, v_category_key)
    ON CONFLICT DO NOTHING
    RETURNING e.event_id INTO v_event_id;
    RETURN v_event_id;
END
$$;
