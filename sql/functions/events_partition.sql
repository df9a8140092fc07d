-- Monthly partitions of recsys.events, created on demand (rows of that month already in the
-- default partition move into the new one). Creators queue on a lock of recsys.events itself,
-- not an advisory lock: taking a table lock makes the session read the catalog changes of the
-- transactions that committed while it waited, so the second look sees the partition another
-- session has just created. After an advisory lock the session could still trust its cached
-- "no such table" and create the partition again: `relation "events_2036m08" already exists`
-- for concurrent first writes into a month. SHARE UPDATE EXCLUSIVE (ONLY the parent) conflicts
-- with itself, not with reads or inserts; ATTACH PARTITION takes it anyway.
CREATE OR REPLACE FUNCTION recsys.ensure_events_partition(p_ts timestamptz) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from timestamptz := date_trunc('month', p_ts, 'UTC');
    v_to   timestamptz := date_trunc('month', p_ts, 'UTC') + interval '1 month';
    v_name text := 'events_' || to_char(v_from AT TIME ZONE 'UTC', 'YYYY"m"MM');
BEGIN
    IF to_regclass('recsys.' || v_name) IS NOT NULL THEN
        RETURN v_name;
    END IF;
    LOCK TABLE ONLY recsys.events IN SHARE UPDATE EXCLUSIVE MODE;
    IF to_regclass('recsys.' || v_name) IS NOT NULL THEN
        RETURN v_name;
    END IF;
    EXECUTE format('CREATE TABLE recsys.%I (LIKE recsys.events INCLUDING DEFAULTS)', v_name);
    EXECUTE format(
        'WITH moved AS (DELETE FROM recsys.events_default WHERE ts >= %L AND ts < %L RETURNING *)'
        ' INSERT INTO recsys.%I SELECT * FROM moved', v_from, v_to, v_name);
    EXECUTE format('ALTER TABLE recsys.events ATTACH PARTITION recsys.%I FOR VALUES FROM (%L) TO (%L)',
                   v_name, v_from, v_to);
    RETURN v_name;
END
$$;
