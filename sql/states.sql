-- User states of an interest version: staged by COPY, then upserted in one statement
-- (recsys_db/interest/store.py).

-- name: create_stage
CREATE TEMP TABLE IF NOT EXISTS recsys_state_stage
    (LIKE recsys.user_states INCLUDING DEFAULTS) ON COMMIT DELETE ROWS

-- name: copy_stage
COPY pg_temp.recsys_state_stage (user_key, version_id, state, hidden, next_categories,
    next_category_probs, last_event_id, last_event_ts, n_events, p_migrate, stay_query,
    stay_items, stay_bias, log_stay, migrate_offset) FROM STDIN

-- name: upsert_from_stage
INSERT INTO recsys.user_states (user_key, version_id, state, hidden, next_categories,
    next_category_probs, last_event_id, last_event_ts, n_events, updated_at, p_migrate,
    stay_query, stay_items, stay_bias, log_stay, migrate_offset)
SELECT user_key, version_id, state, hidden, next_categories, next_category_probs,
       last_event_id, last_event_ts, n_events, now(), p_migrate, stay_query, stay_items,
       stay_bias, log_stay, migrate_offset
FROM pg_temp.recsys_state_stage
ON CONFLICT (user_key, version_id) DO UPDATE SET
    state = excluded.state, hidden = excluded.hidden,
    next_categories = excluded.next_categories,
    next_category_probs = excluded.next_category_probs,
    last_event_id = excluded.last_event_id, last_event_ts = excluded.last_event_ts,
    n_events = excluded.n_events, updated_at = now(), p_migrate = excluded.p_migrate,
    stay_query = excluded.stay_query, stay_items = excluded.stay_items,
    stay_bias = excluded.stay_bias, log_stay = excluded.log_stay,
    migrate_offset = excluded.migrate_offset

-- name: clear_stage
DELETE FROM pg_temp.recsys_state_stage
