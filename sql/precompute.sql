-- Named queries of the precomputed candidates (recsys_db/interest/precompute.py); the work is
-- sql/functions/precompute_candidates.sql.

-- name: precompute
SELECT recsys.precompute_candidates(%(users)s::integer[])

-- name: serving_key
-- What a current row must match, besides the user's own events: the active versions and the
-- catalog's highest item key.
SELECT (SELECT version_id FROM recsys.model_versions WHERE kind = 'interest' AND active),
       (SELECT version_id FROM recsys.model_versions WHERE kind = 'cf' AND active),
       (SELECT version_id FROM recsys.model_versions WHERE kind = 'ranker' AND active),
       (SELECT max(item_key) FROM recsys.items)

-- name: users_to_refill
-- Users whose row was computed for other versions or another catalog, or who have none: those
-- with a state of the active interest version (else every user), most recently active first.
SELECT u.user_key
FROM recsys.users u
LEFT JOIN recsys.user_states s ON s.user_key = u.user_key AND s.version_id = %(interest)s
LEFT JOIN recsys.user_candidates uc ON uc.user_key = u.user_key
WHERE (s.user_key IS NOT NULL OR %(interest)s::integer IS NULL)
  AND (uc.user_key IS NULL
       OR uc.interest_version IS DISTINCT FROM %(interest)s::integer
       OR uc.cf_version IS DISTINCT FROM %(cf)s::integer
       OR uc.ranker_version IS DISTINCT FROM %(ranker)s::integer
       OR uc.max_item_key IS DISTINCT FROM %(max_item)s::integer)
ORDER BY s.last_event_id DESC NULLS LAST, u.user_key DESC
LIMIT %(limit)s

-- name: delete_stale
-- Rows of versions no longer active (maintenance; drop_model_version removes a version's rows).
DELETE FROM recsys.user_candidates uc
WHERE uc.interest_version IS DISTINCT FROM
          (SELECT version_id FROM recsys.model_versions WHERE kind = 'interest' AND active)
   OR uc.cf_version IS DISTINCT FROM
          (SELECT version_id FROM recsys.model_versions WHERE kind = 'cf' AND active)
   OR uc.ranker_version IS DISTINCT FROM
          (SELECT version_id FROM recsys.model_versions WHERE kind = 'ranker' AND active)
