-- Distribute the recsys schema over a Citus cluster. UNTESTED HERE: no Citus package is
-- reachable from this project's CI, so this script has never run against Citus; only its table
-- lists are checked against sql/schema.sql (tests/test_citus_script.py). See sql/citus/README.md
-- for what to expect and what a deployment still has to decide.
--
-- Run it once on the coordinator, as the owner of schema recsys, after `recsys-db migrate` and
-- before loading events (create_distributed_table moves existing rows, which is slower):
--
--     CREATE EXTENSION citus;      -- and pgvector, on the coordinator and on every worker
--     psql "$COORDINATOR_URL" -v ON_ERROR_STOP=1 -f sql/citus/distribute.sql
--
-- The layout (README "Scaling out (Citus)"):
--   distributed by user_key, co-located: events (still range-partitioned by month), user_states,
--       exclusions, user_candidates - one user's history, state, exclusions and precomputed
--       candidates on one worker;
--   reference tables (a copy on every node): categories, behavior_types, items, users (the
--       user_id -> user_key lookup, whose UNIQUE (user_id) a distributed table could not keep),
--       model_versions, item_neighbors, item_stats, category_embeddings,
--       category_transitions;
--   left on the coordinator: item_embeddings (partitioned by version, and Citus distributes
--       partitioned tables only by hash; its HNSW indexes stay there), forgotten_users
--       (track_event updates it on every call: as a reference table that would be a write to
--       every node), model_blobs, job_runs, model_activations, rejected_events, meta.
-- coordinator-local: recsys.item_embeddings, recsys.forgotten_users, recsys.model_blobs,
-- coordinator-local: recsys.job_runs, recsys.model_activations, recsys.rejected_events,
-- coordinator-local: recsys.meta

\set ON_ERROR_STOP on

-- 1. Identity columns become plain sequence defaults (same values, same behaviour for every
--    INSERT recsys-db makes): Citus rejects GENERATED ... AS IDENTITY on distributed and
--    reference tables in older releases and accepts only bigint identities in newer ones, and
--    these keys are integer.
DO $$
DECLARE
    col record;
    seq text;
BEGIN
    FOR col IN
        SELECT c.relname, a.attname FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'recsys' AND a.attidentity <> ''
          AND c.relname IN ('categories', 'items', 'users', 'model_versions')
    LOOP
        seq := col.relname || '_' || col.attname || '_seq';
        EXECUTE format('ALTER TABLE recsys.%I ALTER COLUMN %I DROP IDENTITY',
                       col.relname, col.attname);
        EXECUTE format('CREATE SEQUENCE recsys.%I AS integer OWNED BY recsys.%I.%I',
                       seq, col.relname, col.attname);
        EXECUTE format('SELECT setval(%L, coalesce((SELECT max(%I) FROM recsys.%I), 0) + 1, false)',
                       'recsys.' || seq, col.attname, col.relname);
        EXECUTE format('ALTER TABLE recsys.%I ALTER COLUMN %I SET DEFAULT nextval(%L::regclass)',
                       col.relname, col.attname, 'recsys.' || seq);
    END LOOP;
END
$$;

-- 2. Reference tables: read by every request, written by jobs or rarely (a new user or item is
--    one write to every node). Referenced tables first (items -> categories).
SELECT create_reference_table('recsys.categories');
SELECT create_reference_table('recsys.behavior_types');
SELECT create_reference_table('recsys.items');
SELECT create_reference_table('recsys.users');
SELECT create_reference_table('recsys.model_versions');
SELECT create_reference_table('recsys.item_neighbors');
SELECT create_reference_table('recsys.item_stats');
SELECT create_reference_table('recsys.category_embeddings');
SELECT create_reference_table('recsys.category_transitions');

-- 3. The NOTIFY trigger goes: Citus runs triggers of a distributed table on the workers' shards
--    (and only with citus.enable_unsafe_triggers), where a NOTIFY never reaches the
--    coordinator's `recsys-db worker`. The worker polls instead (`recsys-db worker --poll 0.2`).
--    `recsys-db migrate` re-creates it when it re-applies events_notify.sql: drop it again then.
DROP TRIGGER IF EXISTS events_notify ON recsys.events;

-- 4. Distributed by user: every primary key starts with user_key, as Citus requires of unique
--    constraints. events is range-partitioned by month: distributing the parent distributes
--    its partitions, and those recsys.ensure_events_partition creates later.
SELECT create_distributed_table('recsys.events', 'user_key');
SELECT create_distributed_table('recsys.user_states', 'user_key', colocate_with => 'recsys.events');
SELECT create_distributed_table('recsys.exclusions', 'user_key', colocate_with => 'recsys.events');
SELECT create_distributed_table('recsys.user_candidates', 'user_key',
                               colocate_with => 'recsys.events');

-- 5. model_blobs keeps its foreign key to model_versions (now a reference table): Citus turns
--    a coordinator table with a foreign key to a reference table into a "Citus local table"
--    (citus.enable_local_reference_table_foreign_keys, on by default); done explicitly here.
SELECT citus_add_local_table_to_metadata('recsys.model_blobs');

-- Functions stay on the coordinator (no create_distributed_function): the API takes text ids
-- (user_id), not the distribution column, and the vector search reads item_embeddings, which
-- lives on the coordinator. Each call plans its per-user queries as router queries to the
-- user's worker (every read of events / user_states / exclusions filters user_key = one key).
