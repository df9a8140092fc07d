-- Named queries of recsys_db/forget.py (forgetting users) and the doctor's line about them.

-- name: forget_users
SELECT users, known_users, events, rejected_events, user_rows, items, versions
FROM recsys.forget_users(%(ids)s::text[]);

-- name: awaiting
-- Forgotten users whose data may still sit in derived data: an active model version built
-- before their forget (its weights, neighbours, popularity), or category transitions not
-- refreshed since (refresh-transitions records no version: its last succeeded run in
-- recsys.job_runs counts). Returns (forgotten, awaiting, what must be rebuilt).
WITH active_versions AS (
    SELECT v.kind, v.version_id, v.created_at FROM recsys.model_versions v WHERE v.active
),
transitions AS (
    SELECT EXISTS (SELECT 1 FROM recsys.category_transitions) AS present,
           (SELECT max(r.started_at) FROM recsys.job_runs r
            WHERE r.job = 'refresh-transitions' AND r.status = 'succeeded') AS refreshed
),
awaiting AS (
    SELECT f.forgotten_at FROM recsys.forgotten_users f, transitions t
    WHERE EXISTS (SELECT 1 FROM active_versions s WHERE s.created_at <= f.forgotten_at)
       OR (t.present AND (t.refreshed IS NULL OR t.refreshed <= f.forgotten_at))
)
SELECT (SELECT count(*) FROM recsys.forgotten_users),
       (SELECT count(*) FROM awaiting),
       (SELECT array_agg(x.what ORDER BY x.what) FROM (
            SELECT s.kind || ' v' || s.version_id AS what FROM active_versions s
            WHERE s.created_at <= (SELECT max(a.forgotten_at) FROM awaiting a)
            UNION ALL
            SELECT 'category transitions' FROM transitions t
            WHERE t.present AND (t.refreshed IS NULL
                                 OR t.refreshed <= (SELECT max(a.forgotten_at) FROM awaiting a))
        ) x);
