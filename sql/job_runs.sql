-- Named queries of the job runner (recsys_db/jobs/runner.py): recsys.job_runs rows, the job's
-- advisory lock, and the clean-up after runs whose process died.

-- %(now)s: the runner's clock when a test injects one, else NULL (the server's now()).

-- name: start_run
INSERT INTO recsys.job_runs (job, status, host, pid, attempt, started_at)
VALUES (%(job)s, 'running', %(host)s, %(pid)s, %(attempt)s,
        coalesce(%(now)s::timestamptz, now()))
RETURNING run_id

-- name: try_lock
SELECT pg_try_advisory_lock(hashtext(%(key)s))

-- name: skip_run
UPDATE recsys.job_runs SET status = 'skipped', error = %(reason)s,
    finished_at = coalesce(%(now)s::timestamptz, now())
WHERE run_id = %(run_id)s

-- name: fail_run
UPDATE recsys.job_runs SET status = 'failed', finished_at = coalesce(%(now)s::timestamptz, now()),
    error = %(error)s
WHERE run_id = %(run_id)s

-- name: finish_run
UPDATE recsys.job_runs SET status = 'succeeded',
    finished_at = coalesce(%(now)s::timestamptz, now()),
    rows_read = %(rows_read)s, metrics = %(metrics)s::jsonb
WHERE run_id = %(run_id)s

-- name: abandon_dead_runs
-- Call only while holding the job's advisory lock: its other 'running' rows are dead processes.
UPDATE recsys.job_runs SET status = 'failed', finished_at = now(),
    error = 'abandoned: the process died (its advisory lock was released)'
WHERE job = %(job)s AND status = 'running' AND run_id <> %(run_id)s
RETURNING run_id

-- name: leftover_versions
-- Half-built versions of the job's runs that are no longer running.
SELECT mv.version_id
FROM recsys.model_versions mv
JOIN recsys.job_runs r ON r.run_id = mv.job_run_id
WHERE mv.status = 'building' AND NOT mv.active AND r.job = %(job)s AND r.status <> 'running'
ORDER BY 1

-- name: last_runs
SELECT DISTINCT ON (job) job, status, started_at, finished_at
FROM recsys.job_runs
ORDER BY job, started_at DESC
