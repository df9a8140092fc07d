-- Managed PostgreSQL (revision 0008): everything runs as a database owner that is not a
-- superuser (RDS, Cloud SQL, Azure, Supabase, Neon), and concurrent first writes into a new month
-- never fail.
--
-- 1. No function names hnsw.ef_search in a SET clause any more. Until pgvector's library is
--    loaded in a session that setting is an unknown placeholder, and only a superuser may name a
--    placeholder in CREATE/ALTER FUNCTION ... SET: `train-cf` failed in install_serving, and so
--    would a pg_restore of the schema by the owner. The functions that search HNSW indexes
--    raise it in their body instead (recsys.raise_hnsw_ef_search), which anyone may do at run
--    time. It then holds to the end of the caller's transaction (only ever raised, never
--    lowered), where a SET clause restored it when the function returned.
-- 2. recsys.ensure_events_partition queues creators on a table lock instead of an advisory
--    lock (see there).

-- HNSW returns at most ef_search rows: the vector source wants 100 candidates.
CREATE FUNCTION recsys.raise_hnsw_ef_search(p_at_least integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(nullif(current_setting('hnsw.ef_search', true), '')::integer, 0) < p_at_least
    THEN
        PERFORM set_config('hnsw.ef_search', p_at_least::text, true);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION recsys.raise_hnsw_ef_search(integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION recsys.candidate_features(
    p_user_key integer, p_at timestamptz, p_interest integer, p_cf integer,
    p_category_key integer DEFAULT NULL, p_per_source integer DEFAULT 100
) RETURNS TABLE (item_key integer, sources text[], because_item integer,
                 top_category integer, features double precision[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM recsys.raise_hnsw_ef_search(120);
    RETURN QUERY EXECUTE format('SELECT * FROM (%s) c WHERE $5 IS NULL OR c.category_key = $5',
                                recsys.candidate_features_query(p_interest))
    USING p_user_key, p_at, p_interest, p_cf, p_category_key, p_per_source;
END
$$;

CREATE OR REPLACE FUNCTION recsys.similar_items(item_id text, k integer DEFAULT 10)
RETURNS TABLE (similar_item_id text, score double precision, rank integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_item integer;
    v_cf integer;
    v_interest integer;
    v_dim integer;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'similar_items: k must be between 1 and 1000, got %',
            coalesce(k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.item_key INTO v_item FROM recsys.items i WHERE i.item_id = similar_items.item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'similar_items: unknown item %', quote_literal(similar_items.item_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT mv.version_id INTO v_cf FROM recsys.model_versions mv WHERE mv.kind = 'cf' AND mv.active;
    RETURN QUERY
    SELECT i.item_id, n.score::double precision,
           (row_number() OVER (ORDER BY n.score DESC, n.neighbor_key))::integer
    FROM recsys.item_neighbors n JOIN recsys.items i ON i.item_key = n.neighbor_key
    WHERE n.version_id = v_cf AND n.item_key = v_item
    ORDER BY n.score DESC, n.neighbor_key LIMIT k;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT mv.version_id, mv.dim INTO v_interest, v_dim FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    IF v_interest IS NULL THEN
        RETURN;
    END IF;
    PERFORM recsys.raise_hnsw_ef_search(120);
    RETURN QUERY EXECUTE format(
        'SELECT i.item_id, -(e.embedding::vector(%1$s) <#> q.embedding::vector(%1$s)),'
        ' (row_number() OVER ())::integer'
        ' FROM (SELECT embedding FROM recsys.%2$I WHERE item_key = $1) q,'
        ' LATERAL (SELECT x.item_key, x.embedding FROM recsys.%2$I x WHERE x.item_key <> $1'
        '          ORDER BY x.embedding::vector(%1$s) <#> q.embedding::vector(%1$s) LIMIT $2) e'
        ' JOIN recsys.items i ON i.item_key = e.item_key',
        v_dim, 'item_embeddings_v' || v_interest)
    USING v_item, k;
END
$$;

CREATE OR REPLACE FUNCTION recsys.install_serving() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_interest integer;
    v_ranker integer;
    v_schema text;
    v_scorer text := 'recsys.default_rank_score';
BEGIN
    SELECT mv.version_id INTO v_interest FROM recsys.model_versions mv
    WHERE mv.kind = 'interest' AND mv.active;
    SELECT mv.version_id INTO v_ranker FROM recsys.model_versions mv
    WHERE mv.kind = 'ranker' AND mv.active;
    IF v_ranker IS NOT NULL AND to_regprocedure(
            format('recsys.ranker_score_v%s(double precision[])', v_ranker)) IS NOT NULL THEN
        v_scorer := format('recsys.%I', 'ranker_score_v' || v_ranker);
    END IF;
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION recsys.serving_candidates(
            p_user_key integer, p_at timestamptz, p_interest integer, p_cf integer,
            p_category_key integer, p_per_source integer)
        RETURNS TABLE (item_key integer, sources text[], because_item integer,
                       top_category integer, features double precision[])
        LANGUAGE plpgsql STABLE SET search_path = pg_catalog, %I, pg_temp
        SET plan_cache_mode = force_generic_plan
        AS %L$f$, v_schema,
        'BEGIN PERFORM recsys.raise_hnsw_ef_search(120); RETURN QUERY '
        || recsys.candidate_features_query(v_interest) || '; END');
    EXECUTE format('CREATE OR REPLACE FUNCTION recsys.serving_score(f double precision[])'
                   ' RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE'
                   ' AS %L', format('SELECT %s(f)', v_scorer));
END
$$;

-- The functions replaced above lost their settings: pin search_path to the vector schema again.
-- recommend keeps its body; it only sheds the setting (migrations/env.py loaded pgvector's
-- library, so the name is known and the owner may RESET it).
DO $do$
DECLARE
    v_schema text;
    v_fn text;
BEGIN
    SELECT n.nspname INTO v_schema FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    FOREACH v_fn IN ARRAY ARRAY[
        'recsys.candidate_features(integer, timestamptz, integer, integer, integer, integer)',
        'recsys.similar_items(text, integer)']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp',
                       v_fn, v_schema);
    END LOOP;
    ALTER FUNCTION recsys.recommend(text, integer, text, boolean) RESET hnsw.ef_search;
END
$do$;

SELECT recsys.install_serving();

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
