-- Release 0008 -> 0009, before the functions of sql/functions/ it names are applied: user
-- states carry the stay-or-migrate model's distribution (sql/schema.sql), and interest_drift
-- gains a column p_migrate (a new result type: it is dropped, then created again).
ALTER TABLE recsys.user_states ADD COLUMN IF NOT EXISTS p_migrate real;
ALTER TABLE recsys.user_states ADD COLUMN IF NOT EXISTS stay_query vector;
ALTER TABLE recsys.user_states ADD COLUMN IF NOT EXISTS stay_items integer[];
ALTER TABLE recsys.user_states ADD COLUMN IF NOT EXISTS stay_bias real[];
ALTER TABLE recsys.user_states ADD COLUMN IF NOT EXISTS log_stay double precision;
ALTER TABLE recsys.user_states ADD COLUMN IF NOT EXISTS migrate_offset double precision;
DROP FUNCTION IF EXISTS recsys.interest_drift(text, interval);
