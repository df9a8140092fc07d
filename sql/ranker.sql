-- Named queries of the ranker job (recsys_db/ranker/train.py).

-- name: lists
-- Candidates with features for each user at cut-off %(at)s (the serving function itself), and
-- the label: the strongest behavior weight the user then showed on the item in the label window,
-- plus %(next_bonus)s if it is the very item the user touched first after the cut-off. The
-- window's events of the listed users are read once and joined (a probe of recsys.events per
-- candidate cost 40 ms a user at 1M events, most of the lists' time).
WITH win AS (SELECT e.user_key, e.item_key, e.ts, e.event_id, b.weight
             FROM recsys.events e JOIN recsys.behavior_types b USING (behavior_key)
             WHERE e.user_key = ANY(%(users)s::integer[])
               AND e.ts >= %(at)s AND e.ts < %(until)s),
label AS (SELECT w.user_key, w.item_key, max(w.weight) AS weight FROM win w GROUP BY 1, 2),
nxt AS (SELECT DISTINCT ON (w.user_key) w.user_key, w.item_key FROM win w
        ORDER BY w.user_key, w.ts, w.event_id)
SELECT u.user_key, f.item_key, f.features,
       coalesce(l.weight, 0)
       + CASE WHEN f.item_key = nxt.item_key THEN %(next_bonus)s ELSE 0 END AS label
FROM unnest(%(users)s::integer[]) AS u(user_key)
CROSS JOIN LATERAL recsys.candidate_features(u.user_key, %(at)s, %(interest)s, %(cf)s) f
LEFT JOIN nxt ON nxt.user_key = u.user_key
LEFT JOIN label l ON l.user_key = u.user_key AND l.item_key = f.item_key
ORDER BY u.user_key, f.item_key;

-- name: label_users
-- Users active in the label window who also have history before the cut-off.
SELECT DISTINCT e.user_key FROM recsys.events e
WHERE e.ts >= %(at)s AND e.ts < %(until)s
  AND EXISTS (SELECT 1 FROM recsys.events h WHERE h.user_key = e.user_key AND h.ts < %(at)s)
ORDER BY 1;

-- name: latest_event
SELECT max(ts) FROM recsys.events

-- name: insert_blob
INSERT INTO recsys.model_blobs (version_id, format, blob)
VALUES (%(version)s, 'lightgbm-text', %(blob)s)

-- name: create_score_sample
CREATE TEMP TABLE IF NOT EXISTS recsys_score_sample (f float8[])

-- name: clear_score_sample
TRUNCATE recsys_score_sample

-- name: insert_score_sample
INSERT INTO recsys_score_sample VALUES (%s)

-- name: time_score_sample
-- A template for psycopg.sql: {function} is the compiled scorer, composed as sql.Identifier.
SELECT sum({function}(f)) FROM recsys_score_sample
