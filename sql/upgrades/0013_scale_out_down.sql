-- Downgrade of revision 0013: drops what sql/upgrades/0013_scale_out.sql added, where it can.
-- Each part between its markers.
-- precomputed candidates: nothing is dropped. recsys.user_candidates stays (empty rows are
-- harmless, and rows go stale by themselves): the current body of rank_candidates (kept, as every
-- downgrade keeps the functions) reads it, so dropping it would break recommend. The rows are
-- emptied, since nothing at 0012 keeps them current; the upgrade creates the table only if missing.
DELETE FROM recsys.user_candidates;
-- end precomputed candidates
