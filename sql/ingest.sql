-- Named queries of the bulk ingestion door (recsys_db/ingest/load.py). The rules themselves are
-- functions in 0001_events.sql, shared with recsys.track_event.

-- name: temp_buffers
-- Before the session's first temp table: staging stays in memory rather than on disk.
SET temp_buffers = '512MB';

-- name: stage
CREATE TEMP TABLE recsys_stage (
    line_no     bigint NOT NULL,
    user_id     text,
    item_id     text,
    category_id text,
    behavior    text,
    ts          text,
    problem     text,
    raw         text
) ON COMMIT DROP;

-- name: clear_stage
-- Between chunks of one load (recsys_db/ingest/load.py CHUNK_ROWS), in its transaction.
TRUNCATE pg_temp.recsys_stage;

-- name: copy
COPY pg_temp.recsys_stage (line_no, user_id, item_id, category_id, behavior, ts, problem, raw)
FROM STDIN

-- name: check
SELECT good, bad, forgotten FROM recsys.check_staged();

-- name: problems
SELECT line_no, problem FROM pg_temp.recsys_checked
WHERE problem IS NOT NULL ORDER BY line_no LIMIT %(limit)s;

-- name: load
SELECT loaded, duplicates, rejected, new_users, new_items, new_categories
FROM recsys.load_checked(%(source)s);
