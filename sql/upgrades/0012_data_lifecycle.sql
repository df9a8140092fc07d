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
-- catalog, exclusions, reasons (parts 3-5): attribute filters served by a GIN index, per-user
-- exclusions; recommend gained arguments (filter, exclude_seen): a changed argument list needs
-- the old function dropped before sql/functions/recommend.sql re-creates it (grants.sql grants
-- the new signature again). rank_candidates and reason_text keep their old argument lists as
-- wrappers beside the new ones (sql/functions/rank_candidates.sql): an old recommend in flight
-- while this commits still finds them.
CREATE INDEX IF NOT EXISTS items_attributes_idx ON recsys.items USING gin (attributes jsonb_path_ops);
CREATE TABLE IF NOT EXISTS recsys.exclusions (
    user_key   integer NOT NULL,
    item_key   integer NOT NULL,
    until      timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_key, item_key)
);
DROP FUNCTION IF EXISTS recsys.recommend(text, integer, text, boolean);
-- end catalog, exclusions, reasons
