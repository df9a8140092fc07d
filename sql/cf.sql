-- Named queries of the CF trainer (recsys_db/cf.py). The registry row is written by
-- recsys_db/registry.py (sql/registry.sql).

-- name: behavior_weights
SELECT behavior_key, weight FROM recsys.behavior_types

-- name: copy_neighbors
COPY recsys.item_neighbors (version_id, item_key, neighbor_key, score) FROM STDIN

-- name: refresh_item_stats
SELECT recsys.refresh_item_stats(%(version)s, %(as_of)s)

-- name: analyze
-- After a version is written, in its transaction: the planner learns the new version_id's
-- rows before the serving query or the ranker's lists plan with it (its statistics would say
-- "no such version", 1 row, and hash the whole version instead of probing it).
ANALYZE recsys.item_neighbors, recsys.item_stats
