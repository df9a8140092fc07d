-- Named queries of `recsys-db doctor` (recsys_db/doctor/). Read-only: nothing here writes.

-- name: session
-- The doctor's own connection: no check may hang on a lock or a runaway query.
SELECT set_config('statement_timeout', %(statement_timeout)s, false);

-- name: server
SELECT current_setting('server_version_num')::integer, current_setting('server_version'),
       current_database();

-- name: pgvector
-- The version available to CREATE EXTENSION, the one installed in this database (NULL when
-- not installed), whether schema recsys exists (then a missing extension was dropped) and
-- whether this role is a superuser (else an admin must create the extension).
SELECT (SELECT a.default_version FROM pg_available_extensions a WHERE a.name = 'vector'),
       (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'vector'),
       to_regnamespace('recsys') IS NOT NULL,
       (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user);

-- name: has_events
SELECT EXISTS (SELECT 1 FROM recsys.events);

-- name: active_models
-- Each active version with what serving needs of it: the stored weights, the interest
-- version's item_embeddings partition (and whether it holds rows, read through the parent so a
-- detached partition counts as empty), the ranker's compiled scoring function.
SELECT v.kind, v.version_id, v.dim,
       EXISTS (SELECT 1 FROM recsys.model_blobs b WHERE b.version_id = v.version_id),
       to_regclass(format('recsys.item_embeddings_v%s', v.version_id)) IS NOT NULL,
       EXISTS (SELECT 1 FROM recsys.item_embeddings ie WHERE ie.version_id = v.version_id),
       to_regprocedure(format('recsys.ranker_score_v%s(double precision[])', v.version_id))
           IS NOT NULL
FROM recsys.model_versions v
WHERE v.active
ORDER BY v.kind;

-- name: hnsw_indexes
-- HNSW indexes on the item_embeddings partition of an interest version.
SELECT c.relname, i.indisvalid, i.indisready
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am a ON a.oid = c.relam
WHERE a.amname = 'hnsw'
  AND i.indrelid = to_regclass('recsys.item_embeddings_v' || %(version)s::integer)
ORDER BY c.relname;

-- name: serving_user
-- A user to ask for recommendations: one with a state in the active interest version (so the
-- vector path runs), else any user; NULL when there are none.
SELECT coalesce(
    (SELECT u.user_id FROM recsys.user_states s
     JOIN recsys.model_versions v ON v.version_id = s.version_id AND v.kind = 'interest'
                                 AND v.active
     JOIN recsys.users u ON u.user_key = s.user_key
     LIMIT 1),
    (SELECT u.user_id FROM recsys.users u LIMIT 1));

-- name: recommend
SELECT count(*) FROM recsys.recommend(%(user_id)s, k => 10);

-- name: serving_functions
-- The source of the generated serving functions (install_serving bakes the active interest
-- partition and ranker function into them).
SELECT pg_get_functiondef(to_regprocedure(
           'recsys.serving_candidates(integer, timestamptz, integer, integer, integer, integer)')),
       pg_get_functiondef(to_regprocedure('recsys.serving_score(double precision[])'));

-- name: worker_lag
-- Users whose state in interest version %(version)s does not cover all their events, found the
-- way the worker finds them (sql/live.sql stale_users: events after the watermark minus a
-- lookback, then an exact count per user), and for how long the oldest has waited at most.
-- Events carry no arrival time, so a pending event has waited at most since the later of its
-- own timestamp and the last update of the user's state (the version's activation for users
-- without a state): an event that arrived before that update would have been included.
WITH v AS (
    SELECT mv.version_id, coalesce(mv.activated_at, mv.created_at) AS since
    FROM recsys.model_versions mv WHERE mv.version_id = %(version)s
),
mark AS (
    SELECT coalesce(
        (SELECT (m.value #>> '{}')::bigint FROM recsys.meta m
         WHERE m.key = %(watermark_key)s),
        (SELECT max(s.last_event_id) FROM recsys.user_states s
         WHERE s.version_id = %(version)s),
        0) - %(lookback)s AS since_id
),
recent AS (
    SELECT e.user_key FROM recsys.events e, mark
    WHERE e.event_id > mark.since_id GROUP BY e.user_key
),
stale AS (
    SELECT r.user_key, s.last_event_id, coalesce(s.updated_at, v.since) AS state_at
    FROM recent r CROSS JOIN v
    LEFT JOIN recsys.user_states s ON s.user_key = r.user_key AND s.version_id = v.version_id
    WHERE s.user_key IS NULL
       OR s.n_events <> (SELECT count(*) FROM recsys.events e WHERE e.user_key = r.user_key)
),
waiting AS (
    SELECT greatest(st.state_at,
                    (SELECT min(e.ts) FROM recsys.events e, mark
                     WHERE e.user_key = st.user_key
                       AND e.event_id > greatest(mark.since_id, coalesce(st.last_event_id, 0))))
           AS since
    FROM stale st
)
SELECT count(*), greatest(0, extract(epoch FROM now() - min(w.since)))::double precision
FROM waiting w;

-- name: job_last_runs
-- The latest finished (succeeded or failed) run of each job.
SELECT DISTINCT ON (r.job) r.job, r.run_id, r.status, r.finished_at, r.error
FROM recsys.job_runs r
WHERE r.status IN ('succeeded', 'failed')
ORDER BY r.job, r.started_at DESC, r.run_id DESC;

-- name: job_running
-- Runs marked 'running', their age, and whether any session holds the job's advisory lock
-- (recsys_db/jobs.py: pg_try_advisory_lock(hashtext('recsys-job:' || job)); pg_locks shows a
-- bigint key as classid = high 32 bits, objid = low 32 bits, objsubid = 1). The lock goes
-- with the process, so a run whose lock nobody holds has died.
SELECT r.run_id, r.job, r.host, r.pid,
       extract(epoch FROM now() - r.started_at)::double precision,
       EXISTS (SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                 AND l.database = (SELECT d.oid FROM pg_database d
                                   WHERE d.datname = current_database())
                 AND ((l.classid::bigint << 32) | l.objid::bigint)
                     = hashtext('recsys-job:' || r.job)::bigint)
FROM recsys.job_runs r
WHERE r.status = 'running'
ORDER BY r.started_at;

-- name: privileges
-- What the role running recsys-db (migrate, jobs, worker) holds, for the privileges check.
-- Before the first migration: CREATE (schema recsys) and TEMPORARY (ingest stages rows in
-- pg_temp) on the database, CREATE on schema public (Alembic's version table), CREATEROLE
-- unless the app role exists, and pgvector created by an admin. After it: the role must own
-- (be a member of the owner of) everything recsys-db made, since jobs create and replace
-- partitions, indexes and functions; the first few objects it does not own are named.
WITH mine AS (
    SELECT 0 AS rank, 'schema recsys' AS name, n.nspowner AS owner
    FROM pg_namespace n WHERE n.nspname = 'recsys'
    UNION ALL
    SELECT 1, 'table ' || c.oid::regclass::text, c.relowner
    FROM pg_class c WHERE c.relnamespace = to_regnamespace('recsys') AND c.relkind IN ('r', 'p')
    UNION ALL
    SELECT 2, 'function ' || p.oid::regprocedure::text, p.proowner
    FROM pg_proc p WHERE p.pronamespace = to_regnamespace('recsys')
    UNION ALL
    SELECT 1, 'table ' || c.oid::regclass::text, c.relowner
    FROM pg_class c WHERE c.oid = to_regclass('public.recsys_alembic_version'))
SELECT current_user, current_database(), r.rolsuper, r.rolcreaterole,
       has_database_privilege(current_database(), 'CREATE'),
       has_database_privilege(current_database(), 'TEMPORARY'),
       EXISTS (SELECT 1 FROM pg_namespace n
               WHERE n.nspname = 'public' AND has_schema_privilege(n.oid, 'CREATE')),
       to_regnamespace('recsys') IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'vector'),
       EXISTS (SELECT 1 FROM pg_roles a WHERE a.rolname = %(app_role)s),
       (SELECT array_agg(m.name ORDER BY m.rank, m.name) FROM (
            SELECT mine.rank, mine.name FROM mine WHERE NOT pg_has_role(mine.owner, 'USAGE')
            ORDER BY mine.rank, mine.name LIMIT 5) m),
       (SELECT count(*) FROM mine WHERE NOT pg_has_role(mine.owner, 'USAGE'))
FROM pg_roles r WHERE r.rolname = current_user;
