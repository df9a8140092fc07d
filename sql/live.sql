-- Named queries of the live state refresher (recsys_db/interest/live.py).

-- name: watermark
SELECT (value #>> '{}')::bigint FROM recsys.meta WHERE key = %(key)s;

-- name: initial_watermark
SELECT coalesce(max(last_event_id), 0) FROM recsys.user_states WHERE version_id = %(version)s;

-- name: stale_users
-- Users with events after (watermark - lookback) whose stored state does not cover all their
-- events (or who have no state yet), and the highest event id seen.
WITH recent AS (
    SELECT user_key, max(event_id) AS top FROM recsys.events
    WHERE event_id > %(since)s GROUP BY user_key
)
SELECT r.user_key, max(r.top) OVER () AS top
FROM recent r
LEFT JOIN recsys.user_states s ON s.user_key = r.user_key AND s.version_id = %(version)s
WHERE s.user_key IS NULL
   OR s.n_events <> (SELECT count(*) FROM recsys.events e WHERE e.user_key = r.user_key);

-- name: save_watermark
INSERT INTO recsys.meta (key, value) VALUES (%(key)s, to_jsonb(%(mark)s::bigint))
ON CONFLICT (key) DO UPDATE SET value = excluded.value;
