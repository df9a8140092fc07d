-- Named queries of the embedded standby (recsys_db/replica.py). The standby is the one that
-- streams through replication slot %(slot)s.

-- name: on_primary
-- Run on the primary: the standby's connection (NULL columns when it is not connected), how far
-- its replay is behind the primary's WAL, and the WAL its slot keeps on the primary's disk.
SELECT r.state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint AS replay_lag_bytes,
       (extract(epoch FROM r.replay_lag) * 1000)::double precision AS replay_lag_ms,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint AS retained_wal_bytes
FROM pg_replication_slots s
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = %(slot)s;

-- name: on_standby
-- Run on the standby: still in recovery (read-only), what it received and replayed, and how old
-- the last transaction it replayed is (grows while the primary is idle, too).
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::double precision
           AS last_replay_age_ms;

-- name: drop_slot
SELECT pg_drop_replication_slot(s.slot_name) FROM pg_replication_slots s
WHERE s.slot_name = %(slot)s AND NOT s.active;

-- name: current_lsn
SELECT pg_current_wal_lsn()::text;

-- name: replayed
SELECT coalesce(pg_last_wal_replay_lsn() >= %(lsn)s::pg_lsn, false);
