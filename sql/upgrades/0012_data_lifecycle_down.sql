-- Downgrade of revision 0012: drops what sql/upgrades/0012_data_lifecycle.sql and the new
-- function files added, in reverse order.
-- forget a user: nothing is dropped. recsys.forgotten_users stays, and so do the functions of
-- sql/functions/forgotten.sql and forget_user.sql: the current bodies of track_event and
-- check_staged (kept, as every downgrade keeps them) read the tombstones, so dropping the table
-- would break both event doors, and dropping the tombstones would let forgotten users come back
-- with the next load. The upgrade creates the table only if it is missing.
SELECT 1;
-- end forget a user
-- catalog, exclusions, reasons: drops the functions, table and index the upgrade created, and
-- the new signatures of recommend, rank_candidates and reason_text. No older body is kept
-- (README "SQL files and migrations"), so after this downgrade recommend is absent until the
-- upgrade re-creates it; to serve with an earlier release's functions, restore its backup.
DROP FUNCTION IF EXISTS recsys.recommend(text, integer, text, boolean, jsonb, boolean);
DROP FUNCTION IF EXISTS recsys.rank_candidates(integer, integer, integer, boolean, jsonb, boolean);
DROP FUNCTION IF EXISTS recsys.reason_text(text, text, text, text, timestamptz);
DROP FUNCTION IF EXISTS recsys.exclude_item(text, text, timestamptz);
DROP FUNCTION IF EXISTS recsys.set_item_active(text, boolean);
DROP FUNCTION IF EXISTS recsys.cold_start_item_embeddings(integer);
DROP TABLE IF EXISTS recsys.exclusions;
DROP INDEX IF EXISTS recsys.items_attributes_idx;
-- end catalog, exclusions, reasons
