-- Named queries of the maintenance job (recsys_db/jobs/maintenance.py): event retention, run
-- history, registry rows of retired versions. %(now)s is the job's clock (NULL: the server's).

-- name: old_event_partitions
-- Monthly partitions of recsys.events whose whole range ends at or before the cut-off (the
-- default partition has no range and is never listed).
SELECT c.relname, upper_bound
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL (SELECT substring(pg_get_expr(c.relpartbound, c.oid)
                                     FROM 'TO \(''([^'']+)''\)')::timestamptz AS upper_bound) b
WHERE i.inhparent = 'recsys.events'::regclass
  AND upper_bound <= coalesce(%(now)s::timestamptz, now()) - make_interval(days => %(days)s)
ORDER BY upper_bound

-- name: drop_event_partition
-- {partition}: a name old_event_partitions returned (psycopg sql.Identifier).
DROP TABLE recsys.{partition}

-- name: delete_old_rejected
DELETE FROM recsys.rejected_events
WHERE rejected_at < coalesce(%(now)s::timestamptz, now()) - make_interval(days => %(days)s)

-- name: delete_retired_rows
-- Registry rows of retired versions (their data is gone already) older than the run history:
-- a version's age is its job run's start when that row is still there, else its created_at.
DELETE FROM recsys.model_versions mv
USING (SELECT mv2.version_id, coalesce(r.started_at, mv2.created_at) AS born
       FROM recsys.model_versions mv2
       LEFT JOIN recsys.job_runs r ON r.run_id = mv2.job_run_id
       WHERE mv2.status = 'retired') old
WHERE mv.version_id = old.version_id
  AND old.born < coalesce(%(now)s::timestamptz, now()) - make_interval(days => %(days)s)

-- name: delete_orphan_activations
-- Activation log entries of versions whose registry row is gone. The latest activation of each
-- kind is of its active version, whose row stays, so `rollback` keeps its target.
DELETE FROM recsys.model_activations a
WHERE NOT EXISTS (SELECT 1 FROM recsys.model_versions mv WHERE mv.version_id = a.version_id)

-- name: delete_old_runs
-- Finished runs older than the history window ('running' rows are left to the job runner).
DELETE FROM recsys.job_runs
WHERE status <> 'running'
  AND started_at < coalesce(%(now)s::timestamptz, now()) - make_interval(days => %(days)s)

-- name: vacuum
-- After the deletes, so their space is reused (VACUUM runs outside a transaction).
VACUUM (ANALYZE) recsys.job_runs, recsys.model_versions, recsys.model_activations,
    recsys.rejected_events, recsys.category_transitions, recsys.user_states, recsys.item_neighbors, recsys.item_stats,
    recsys.category_embeddings, recsys.model_blobs, recsys.user_candidates
