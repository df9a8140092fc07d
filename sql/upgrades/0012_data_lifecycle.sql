-- Revision 0012 (data lifecycle): new tables and columns. Each part of issue 14 adds its
-- statements in its own section below, and the same DDL to sql/schema.sql.
-- forget a user (part 1): tombstones, one per forgotten user id, holding only its hash
-- (IF NOT EXISTS: the downgrade keeps the table, see 0012_data_lifecycle_down.sql).
-- check_staged gained an OUT column (rows of forgotten users skipped): a changed result type
-- needs the old function dropped before sql/functions/bulk_load.sql re-creates it.
CREATE TABLE IF NOT EXISTS recsys.forgotten_users (
    user_hash      text PRIMARY KEY,
    forgotten_at   timestamptz NOT NULL DEFAULT now(),
    skipped_events bigint NOT NULL DEFAULT 0
);
DROP FUNCTION IF EXISTS recsys.check_staged();
-- end forget a user
