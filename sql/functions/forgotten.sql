-- Forgotten users (issue 14, "forget a user"): what the event doors and recsys.forget_users
-- share. A tombstone (recsys.forgotten_users) keeps only the hash of a user id; the doors skip
-- the events of a tombstoned id and count them there.

-- The hash a tombstone keeps of a (normalised) user id: sha256, hex. Not reversible by itself;
-- an id that is easy to guess (a small integer) can be recognised by hashing guesses, so the
-- table is readable by the owner only (sql/grants.sql grants no table to the application).
CREATE OR REPLACE FUNCTION recsys.user_id_hash(p_user_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT encode(sha256(convert_to(p_user_id, 'UTF8')), 'hex') $$;

-- Forgetting a user and storing their events exclude each other through transaction-level
-- advisory locks in a space of their own: the doors hold a shared lock on the bucket (one of
-- 64, by hashtext of the id) of each user they store until they commit, recsys.forget_users an
-- exclusive one. So an event is either stored before the forget (which then deletes it) or
-- judged after it (and skipped): none slips in between. Buckets, not ids, so that a bulk load
-- of a million users takes at most 64 locks.
CREATE OR REPLACE FUNCTION recsys.forget_lock_space() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtext('recsys-forget') $$;

CREATE OR REPLACE FUNCTION recsys.forget_lock_bucket(p_user_id text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtext(p_user_id) & 63 $$;

-- The item rows' key in that space (the user buckets are 0-63). The event doors hold it shared
-- until they commit, taken before their user buckets; recsys.forget_users exclusive, before
-- its buckets. So the items a forget finds nobody else touched are judged after every event
-- a running door stores has committed, and no door reads an item row a forget is deleting:
-- no event is dropped for want of its item, or left pointing at a deleted one.
CREATE OR REPLACE FUNCTION recsys.forget_items_lock() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 64 $$;

-- The fields of a raw input line as the readers split them (comma: taobao and csv, tab:
-- movielens/RecBole), trimmed of blanks and quotes: how a rejected line that never got as far
-- as a user_id column is matched against a forgotten id.
CREATE OR REPLACE FUNCTION recsys.raw_fields(p_raw text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(btrim(f, E' \t\r"'''), '') FROM regexp_split_to_table(p_raw, E'[,\t;|]') AS f
$$;
