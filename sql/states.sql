-- Named queries of interest versions (recsys_db/interest/store.py): weights, item vectors,
-- category vectors and user states. The registry row itself is written by
-- recsys_db/registry.py (sql/registry.sql).
--
-- Blocks with {part} / {index} / {dim} / {version} are templates for psycopg.sql: the names are
-- composed as sql.Identifier and the values as sql.Literal, never formatted as text.

-- name: insert_blob
INSERT INTO recsys.model_blobs (version_id, format, blob) VALUES (%(version)s, %(format)s, %(blob)s)

-- name: blob
SELECT blob, format FROM recsys.model_blobs WHERE version_id = %(version)s

-- name: create_vector_partition
CREATE TABLE recsys.{part} (LIKE recsys.item_embeddings INCLUDING DEFAULTS)

-- name: copy_vectors
COPY recsys.{part} (version_id, item_key, embedding) FROM STDIN

-- name: vector_primary_key
ALTER TABLE recsys.{part} ADD PRIMARY KEY (version_id, item_key)

-- name: vector_hnsw_index
CREATE INDEX {index} ON recsys.{part} USING hnsw ((embedding::vector({dim})) vector_ip_ops)

-- name: attach_vector_partition
ALTER TABLE recsys.item_embeddings ATTACH PARTITION recsys.{part} FOR VALUES IN ({version})

-- name: analyze_vector_partition
ANALYZE recsys.{part}

-- name: refresh_category_embeddings
SELECT recsys.refresh_category_embeddings(%(version)s)

-- name: cold_start_item_embeddings
-- catalog items with no event yet: a vector from their category and attributes
SELECT recsys.cold_start_item_embeddings(%(version)s)

-- name: refresh_transitions
SELECT recsys.refresh_category_transitions()

-- User states: staged by COPY, then upserted in one statement.

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

-- name: analyze_states
-- After a version's states are written (see cf.sql's analyze): the serving query's state
-- lookups pick the primary key, not the version index, once the version's rows are known.
ANALYZE recsys.user_states
