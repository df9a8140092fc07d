-- Downgrade of revision 0012: drops what sql/upgrades/0012_data_lifecycle.sql and the new
-- function files added, in reverse order.
-- forget a user: nothing is dropped. recsys.forgotten_users stays, and so do the functions of
-- sql/functions/forgotten.sql and forget_user.sql: the current bodies of track_event and
-- check_staged (kept, as every downgrade keeps them) read the tombstones, so dropping the table
-- would break both event doors, and dropping the tombstones would let forgotten users come back
-- with the next load. The upgrade creates the table only if it is missing.
SELECT 1;
-- end forget a user
