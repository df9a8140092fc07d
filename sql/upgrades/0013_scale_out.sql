-- Revision 0013 (scale out): what it adds besides functions. Each part between its markers.
-- precomputed candidates: recsys.user_candidates (sql/schema.sql says what it holds); IF NOT
-- EXISTS because the downgrade keeps it (see 0013_scale_out_down.sql)
CREATE TABLE IF NOT EXISTS recsys.user_candidates (
    user_key         integer NOT NULL,
    interest_version integer,
    cf_version       integer,
    ranker_version   integer,
    n_events         bigint NOT NULL,
    last_event_id    bigint,
    max_item_key     integer,
    state_at         timestamptz,  -- updated_at of the user's state it used
    computed_at      timestamptz NOT NULL DEFAULT now(),
    item_keys        integer[] NOT NULL,
    scores           double precision[] NOT NULL,
    cf_scores        double precision[] NOT NULL,  -- feature 2 (cf), for the reason
    trends           double precision[] NOT NULL,  -- feature 4 (trend), the tie-break
    because_items    integer[] NOT NULL,
    top_categories   integer[] NOT NULL,
    source_bits      smallint[] NOT NULL,  -- 1: a vector source, 2: a trending source
    PRIMARY KEY (user_key)
);
-- end precomputed candidates
