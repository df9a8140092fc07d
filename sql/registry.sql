-- Named queries of the model registry (recsys_db/registry.py): the version lifecycle
-- (create, mark ready, promote), activation, rollback and garbage collection.

-- name: create_version
INSERT INTO recsys.model_versions (kind, status, dim, params, metrics, job_run_id)
VALUES (%(kind)s, 'building', %(dim)s, %(params)s::jsonb, %(metrics)s::jsonb, %(job_run_id)s)
RETURNING version_id

-- name: mark_ready
UPDATE recsys.model_versions SET status = 'ready', metrics = coalesce(%(metrics)s::jsonb, metrics)
WHERE version_id = %(version)s AND status = 'building'
RETURNING version_id

-- name: set_metrics
UPDATE recsys.model_versions SET metrics = %(metrics)s::jsonb WHERE version_id = %(version)s

-- name: version
SELECT kind, status, params, metrics FROM recsys.model_versions WHERE version_id = %(version)s

-- name: list_versions
SELECT version_id, kind, status, active, created_at, activated_at, metrics
FROM recsys.model_versions
WHERE %(kind)s::text IS NULL OR kind = %(kind)s
ORDER BY version_id DESC

-- name: lock_version
SELECT kind, status FROM recsys.model_versions WHERE version_id = %(version)s FOR UPDATE

-- name: deactivate_others
UPDATE recsys.model_versions SET active = false
WHERE kind = %(kind)s AND active AND version_id <> %(version)s
RETURNING version_id

-- name: set_active
UPDATE recsys.model_versions SET active = true, activated_at = now()
WHERE version_id = %(version)s

-- name: log_activation
INSERT INTO recsys.model_activations (kind, version_id, previous_version_id, reason)
VALUES (%(kind)s, %(version)s, %(previous)s, %(reason)s)

-- name: has_install_serving
SELECT to_regproc('recsys.install_serving') IS NOT NULL

-- name: install_serving
SELECT recsys.install_serving()

-- name: has_drop_forgotten_versions
SELECT to_regproc('recsys.drop_forgotten_versions') IS NOT NULL

-- name: drop_forgotten_versions
-- Inactive versions built before a user was forgotten (sql/functions/forget_user.sql).
SELECT recsys.drop_forgotten_versions()

-- name: active_version
SELECT version_id FROM recsys.model_versions WHERE kind = %(kind)s AND active

-- name: last_activation
SELECT a.version_id, a.previous_version_id
FROM recsys.model_activations a
JOIN recsys.model_versions mv ON mv.version_id = a.version_id AND mv.active
WHERE a.kind = %(kind)s
ORDER BY a.activation_id DESC
LIMIT 1

-- name: blob_formats
SELECT version_id, format FROM recsys.model_blobs WHERE version_id = ANY(%(versions)s)

-- name: drop_version
SELECT recsys.drop_model_version(%(version)s, %(keep_rows)s)

-- name: old_ready_versions
-- Ready versions beyond the newest %(keep)s of their kind.
SELECT version_id
FROM (SELECT version_id, row_number() OVER (PARTITION BY kind ORDER BY version_id DESC) AS n
      FROM recsys.model_versions WHERE status = 'ready') v
WHERE n > %(keep)s
ORDER BY version_id

-- name: orphaned_helpers
-- Helper versions left by a run that is no longer running (or has no run), an hour old.
SELECT mv.version_id
FROM recsys.model_versions mv
LEFT JOIN recsys.job_runs r ON r.run_id = mv.job_run_id
WHERE mv.status = 'building' AND NOT mv.active
  AND r.status IS DISTINCT FROM 'running' AND mv.created_at < now() - interval '1 hour'
ORDER BY 1
