-- Downgrade of revision 0013: drops what sql/upgrades/0013_scale_out.sql added, where it can.
-- Each part between its markers.
-- precomputed candidates: the table is kept, emptied. The current body of rank_candidates
-- (kept, as every downgrade keeps the functions) reads recsys.user_candidates, so dropping it
-- would break recommend; with no rows it serves the live query, and nothing at 0012 would keep
-- rows current. The upgrade creates the table only if it is missing.
DELETE FROM recsys.user_candidates;
-- end precomputed candidates
