-- Named queries of the HTML report (recsys_db/report/data.py). Read-only.
-- Days are UTC calendar days.

-- name: totals
SELECT (SELECT count(*) FROM recsys.events) AS events,
       (SELECT count(*) FROM recsys.users) AS users,
       (SELECT count(*) FROM recsys.items) AS items,
       (SELECT count(*) FROM recsys.categories) AS categories,
       (SELECT min(ts) FROM recsys.events) AS first_event,
       (SELECT max(ts) FROM recsys.events) AS last_event,
       (SELECT count(*) FROM recsys.rejected_events) AS rejected;

-- name: events_by_behavior
-- Every behavior type (in key order), with its number of stored events.
SELECT b.name, coalesce(e.n, 0) AS n
FROM recsys.behavior_types b
LEFT JOIN (SELECT behavior_key, count(*) AS n FROM recsys.events GROUP BY behavior_key) e
       USING (behavior_key)
ORDER BY b.behavior_key;

-- name: daily_events
-- Events per day and behavior from %(since)s on.
SELECT (e.ts AT TIME ZONE 'UTC')::date AS day, b.name, count(*) AS n
FROM recsys.events e JOIN recsys.behavior_types b USING (behavior_key)
WHERE e.ts >= %(since)s
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: daily_active
-- Distinct users and items with at least one event, per day from %(since)s on.
SELECT (ts AT TIME ZONE 'UTC')::date AS day, count(DISTINCT user_key) AS users,
       count(DISTINCT item_key) AS items
FROM recsys.events
WHERE ts >= %(since)s
GROUP BY 1
ORDER BY 1;

-- name: rejected_by_reason
SELECT reason, count(*) AS n, max(rejected_at) AS latest
FROM recsys.rejected_events
GROUP BY reason
ORDER BY n DESC, reason
LIMIT %(limit)s;

-- name: active_interest
SELECT version_id, created_at, metrics
FROM recsys.model_versions
WHERE kind = 'interest' AND active;

-- name: latest_eval
SELECT run_id, coalesce(finished_at, started_at) AS finished_at, metrics
FROM recsys.job_runs
WHERE job = 'eval' AND status = 'succeeded'
ORDER BY started_at DESC, run_id DESC
LIMIT 1;

-- name: versions
-- The latest model versions of every kind (per-epoch history and ranker trade-offs left out).
SELECT version_id, kind, status, active, created_at, activated_at, params,
       metrics - 'history' - 'tradeoffs' AS metrics
FROM recsys.model_versions
ORDER BY version_id DESC
LIMIT %(limit)s;

-- name: transition_grid
-- The %(sources)s categories with the most outgoing transitions (rows) x the %(targets)s
-- categories they most often move to, other than themselves (columns): every cell, with
-- n = 0 where no such transition was seen, and each row's probability of staying put.
WITH src AS (
    SELECT from_category_key AS k, sum(n) AS total
    FROM recsys.category_transitions
    GROUP BY from_category_key
    ORDER BY total DESC, from_category_key
    LIMIT %(sources)s
), dst AS (
    SELECT t.to_category_key AS k, sum(t.n) AS total
    FROM recsys.category_transitions t JOIN src ON src.k = t.from_category_key
    WHERE t.to_category_key <> t.from_category_key
    GROUP BY t.to_category_key
    ORDER BY total DESC, t.to_category_key
    LIMIT %(targets)s
)
SELECT cs.category_id AS from_id, src.total AS from_total,
       coalesce(stay.probability, 0)::double precision AS stay,
       cd.category_id AS to_id, coalesce(t.n, 0) AS n,
       coalesce(t.probability, 0)::double precision AS probability
FROM src CROSS JOIN dst
JOIN recsys.categories cs ON cs.category_key = src.k
JOIN recsys.categories cd ON cd.category_key = dst.k
LEFT JOIN recsys.category_transitions t
       ON t.from_category_key = src.k AND t.to_category_key = dst.k
LEFT JOIN recsys.category_transitions stay
       ON stay.from_category_key = src.k AND stay.to_category_key = src.k
ORDER BY src.total DESC, src.k, dst.total DESC, dst.k;

-- name: top_moves
-- The most frequent moves from one category to another.
SELECT cf.category_id AS from_id, ct.category_id AS to_id, t.n,
       t.probability::double precision AS probability
FROM recsys.category_transitions t
JOIN recsys.categories cf ON cf.category_key = t.from_category_key
JOIN recsys.categories ct ON ct.category_key = t.to_category_key
WHERE t.from_category_key <> t.to_category_key
ORDER BY t.n DESC, cf.category_id, ct.category_id
LIMIT %(limit)s;

-- name: transitions_refreshed_at
SELECT value #>> '{}' FROM recsys.meta WHERE key = 'category_transitions_refreshed_at';

-- name: most_active_users
SELECT u.user_id, e.n
FROM (SELECT user_key, count(*) AS n FROM recsys.events GROUP BY user_key
      ORDER BY n DESC, user_key LIMIT %(limit)s) e
JOIN recsys.users u USING (user_key)
ORDER BY e.n DESC, e.user_key;

-- name: known_users
SELECT user_id FROM recsys.users WHERE user_id = ANY(%(user_ids)s);

-- name: user_daily_categories
-- A user's behavior-weighted events per day and category (NULL category_id: none recorded).
SELECT (e.ts AT TIME ZONE 'UTC')::date AS day, c.category_id,
       sum(b.weight)::double precision AS weight, count(*) AS n
FROM recsys.users u
JOIN recsys.events e ON e.user_key = u.user_key
JOIN recsys.behavior_types b ON b.behavior_key = e.behavior_key
LEFT JOIN recsys.categories c ON c.category_key = e.category_key
WHERE u.user_id = %(user_id)s
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: user_prediction
-- The active interest model's predicted next categories of a user, most likely first.
SELECT c.category_id, p.prob::double precision AS prob
FROM recsys.users u
JOIN recsys.user_states s ON s.user_key = u.user_key
JOIN recsys.model_versions v
  ON v.version_id = s.version_id AND v.kind = 'interest' AND v.active
CROSS JOIN LATERAL unnest(s.next_categories, s.next_category_probs)
     WITH ORDINALITY AS p(category_key, prob, pos)
JOIN recsys.categories c ON c.category_key = p.category_key
WHERE u.user_id = %(user_id)s
ORDER BY p.pos;

-- name: user_drift
SELECT drift, gaining, losing FROM recsys.interest_drift(%(user_id)s);

-- name: active_versions
SELECT v.version_id, v.kind, v.activated_at, v.params, v.metrics - 'history' AS metrics,
       (SELECT count(*) FROM recsys.user_states s WHERE s.version_id = v.version_id)
           AS user_states
FROM recsys.model_versions v
WHERE v.active
ORDER BY v.kind;
