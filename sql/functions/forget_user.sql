-- Forget users (issue 14): remove everything recsys-db stored about them and record a
-- tombstone, so that no door brings them back. See README "Forgetting a user".

-- Drop the data of every inactive version built before the latest forget (ready or failed:
-- 'building' versions belong to a running job, which drops its helpers itself). Such a version
-- may have learnt from a forgotten user; the active ones serve until the jobs replace them
-- (recsys_db/registry.py `activate` calls this after each switch, so the version a retrained
-- one replaces goes at once - rollback then has nothing to return to). The registry rows stay,
-- 'retired'. Returns the number of versions dropped.
CREATE OR REPLACE FUNCTION recsys.drop_forgotten_versions() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_version integer;
    v_dropped integer := 0;
BEGIN
    FOR v_version IN
        SELECT v.version_id FROM recsys.model_versions v
        WHERE NOT v.active AND v.status IN ('ready', 'failed')
          AND v.created_at <= (SELECT max(f.forgotten_at) FROM recsys.forgotten_users f)
        ORDER BY v.version_id
    LOOP
        IF recsys.drop_model_version(v_version, true) THEN
            v_dropped := v_dropped + 1;
        END IF;
    END LOOP;
    RETURN v_dropped;
END
$$;

-- Forget the users `p_user_ids` (external ids, trimmed as every door trims them), in the
-- caller's transaction:
--   * a tombstone per id (recsys.forgotten_users: sha256 of the id, never the id), also for an
--     id never seen, so that a later load of an old file skips it;
--   * their events (every partition), the quarantined rows of recsys.rejected_events that name
--     them (any comma/tab separated field of the raw line equal to the id), their rows in every
--     table with a user_key or user_id column (user_states of every version, ...), their users
--     row;
--   * the items only they had events on: the item rows and every row keyed by them (vectors,
--     neighbours, stats of every version) - an item id nobody else touched would tell what they
--     did. Items with catalog attributes stay (the shop listed them, not the user). The items
--     they shared with others keep their rows; first_seen is recomputed without them;
--   * the data of inactive model versions built before now (drop_forgotten_versions).
-- Derived data of the active versions (co-occurrences, popularity, weights, transitions) goes
-- with the next run of each job; until then `recsys-db doctor` counts the users awaiting it.
-- Concurrent event doors are excluded per lock bucket (sql/functions/forgotten.sql). Cost: an
-- index lookup per user and partition, and one scan of recsys.events and of
-- recsys.rejected_events for the whole call.
CREATE OR REPLACE FUNCTION recsys.forget_users(
    p_user_ids text[],
    OUT users bigint, OUT known_users bigint, OUT events bigint, OUT rejected_events bigint,
    OUT user_rows bigint, OUT items bigint, OUT versions integer
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ids text[];
    v_keys integer[];
    v_known text[];
    v_touched integer[];
    v_kept integer[];
    v_orphans integer[];
    v_table record;
    v_n bigint;
BEGIN
    IF p_user_ids IS NULL OR cardinality(p_user_ids) = 0 THEN
        RAISE EXCEPTION 'forget_user: no user id given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_user_ids) AS u(id) WHERE recsys.normalize_id(u.id) IS NULL)
    THEN
        RAISE EXCEPTION 'forget_user: user_id must be present (NULL or blank given)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT recsys.normalize_id(u.id)) INTO v_ids FROM unnest(p_user_ids) AS u(id);
    IF EXISTS (SELECT 1 FROM unnest(v_ids) AS u(id) WHERE length(u.id) > recsys.max_id_length())
    THEN
        RAISE EXCEPTION 'forget_user: user_id longer than % characters (no door stores such an id)',
            recsys.max_id_length() USING ERRCODE = 'invalid_parameter_value';
    END IF;
    users := cardinality(v_ids);

    -- no event of these users is stored while we work, nor after we commit; and the items we
    -- may delete are judged after every running door's events are in (forgotten.sql)
    PERFORM pg_advisory_xact_lock(recsys.forget_lock_space(), recsys.forget_items_lock());
    PERFORM pg_advisory_xact_lock(recsys.forget_lock_space(), k.bucket)
    FROM (SELECT DISTINCT recsys.forget_lock_bucket(u.id) AS bucket
          FROM unnest(v_ids) AS u(id) ORDER BY 1) k;

    SELECT coalesce(array_agg(u.user_key), '{}'), count(*),
           coalesce(array_agg(recsys.user_id_hash(u.user_id)), '{}')
      INTO v_keys, known_users, v_known
    FROM recsys.users u WHERE u.user_id = ANY (v_ids);
    -- a tombstone per id; forgetting again restarts "awaiting retraining" only when data of the
    -- user had come back (restored from a backup, written past the doors)
    INSERT INTO recsys.forgotten_users AS f (user_hash)
    SELECT recsys.user_id_hash(u.id) FROM unnest(v_ids) AS u(id)
    ON CONFLICT (user_hash) DO UPDATE SET forgotten_at = now()
        WHERE f.user_hash = ANY (v_known);

    SELECT coalesce(array_agg(DISTINCT e.item_key), '{}') INTO v_touched
    FROM recsys.events e WHERE e.user_key = ANY (v_keys);
    DELETE FROM recsys.events e WHERE e.user_key = ANY (v_keys);
    GET DIAGNOSTICS events = ROW_COUNT;

    DELETE FROM recsys.rejected_events r
    WHERE EXISTS (SELECT 1 FROM recsys.raw_fields(r.raw) AS f(field) WHERE f.field = ANY (v_ids));
    GET DIAGNOSTICS rejected_events = ROW_COUNT;

    -- every other table about users (user_states of every version, and those later revisions
    -- add), the users rows last
    user_rows := 0;
    FOR v_table IN
        SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'recsys'::regnamespace AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname NOT IN ('users', 'events')
          AND ((a.attname = 'user_key' AND a.atttypid = 'integer'::regtype)
               OR (a.attname = 'user_id' AND a.atttypid = 'text'::regtype))
        ORDER BY c.relname, a.attname
    LOOP
        IF v_table.attname = 'user_key' THEN
            EXECUTE format('DELETE FROM recsys.%I WHERE user_key = ANY ($1)', v_table.relname)
                USING v_keys;
        ELSE
            EXECUTE format('DELETE FROM recsys.%I WHERE user_id = ANY ($1)', v_table.relname)
                USING v_ids;
        END IF;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        user_rows := user_rows + v_n;
    END LOOP;
    DELETE FROM recsys.users u WHERE u.user_key = ANY (v_keys);

    -- the items they touched: first_seen without them (NULL when nobody else touched them), and
    -- out when nobody else touched them and the shop gave them no catalog attributes
    v_orphans := '{}';
    IF cardinality(v_touched) > 0 THEN
        WITH kept AS (
            SELECT e.item_key, min(e.ts) AS first_seen FROM recsys.events e
            WHERE e.item_key = ANY (v_touched) GROUP BY e.item_key),
        moved AS (
            UPDATE recsys.items i SET first_seen = kept.first_seen
            FROM kept WHERE i.item_key = kept.item_key
                        AND i.first_seen IS DISTINCT FROM kept.first_seen)
        SELECT coalesce(array_agg(kept.item_key), '{}') INTO v_kept FROM kept;
        UPDATE recsys.items i SET first_seen = NULL
        WHERE i.item_key = ANY (v_touched) AND NOT i.item_key = ANY (v_kept);
        SELECT coalesce(array_agg(i.item_key), '{}') INTO v_orphans FROM recsys.items i
        WHERE i.item_key = ANY (v_touched) AND NOT i.item_key = ANY (v_kept)
          AND i.attributes = '{}'::jsonb;
    END IF;
    items := cardinality(v_orphans);
    IF items > 0 THEN
        FOR v_table IN
            SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'recsys'::regnamespace AND NOT a.attisdropped
              AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND c.relname NOT IN ('items', 'events')
              AND a.attname IN ('item_key', 'neighbor_key') AND a.atttypid = 'integer'::regtype
            ORDER BY c.relname, a.attname
        LOOP
            EXECUTE format('DELETE FROM recsys.%I WHERE %I = ANY ($1)',
                           v_table.relname, v_table.attname) USING v_orphans;
        END LOOP;
        DELETE FROM recsys.items i WHERE i.item_key = ANY (v_orphans);
    END IF;

    -- last: dropping a version's partition locks recsys.item_embeddings until we commit
    versions := recsys.drop_forgotten_versions();
END
$$;

-- One user: `SELECT * FROM recsys.forget_user('user-42')`.
CREATE OR REPLACE FUNCTION recsys.forget_user(
    p_user_id text,
    OUT users bigint, OUT known_users bigint, OUT events bigint, OUT rejected_events bigint,
    OUT user_rows bigint, OUT items bigint, OUT versions integer
)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM recsys.forget_users(ARRAY[p_user_id]) $$;
