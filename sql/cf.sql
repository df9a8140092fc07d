-- Named queries of the CF trainer (recsys_db/cf.py). The registry row is written by
-- recsys_db/registry.py (sql/registry.sql).

-- name: behavior_weights
SELECT behavior_key, weight FROM recsys.behavior_types

-- name: copy_neighbors
COPY recsys.item_neighbors (version_id, item_key, neighbor_key, score) FROM STDIN

-- name: refresh_item_stats
SELECT recsys.refresh_item_stats(%(version)s, %(as_of)s)
