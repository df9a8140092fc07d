-- Interest model (revision 0002): model weights in the database, category transitions, the
-- interest-migration functions applications call, and a wake-up signal for the live worker.

-- Trained weights and vocabularies of a model version (the worker loads them from here, so it
-- can run on any host).
CREATE TABLE recsys.model_blobs (
    version_id integer PRIMARY KEY REFERENCES recsys.model_versions (version_id) ON DELETE CASCADE,
    format     text NOT NULL,
    blob       bytea NOT NULL
);

-- Category -> next category over consecutive events of a user (refreshed by a job).
CREATE TABLE recsys.category_transitions (
    from_category_key integer NOT NULL,
    to_category_key   integer NOT NULL,
    n                 bigint NOT NULL,
    probability       real NOT NULL,
    PRIMARY KEY (from_category_key, to_category_key)
);

CREATE FUNCTION recsys.refresh_category_transitions() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_rows bigint;
BEGIN
    DELETE FROM recsys.category_transitions;
    INSERT INTO recsys.category_transitions (from_category_key, to_category_key, n, probability)
    SELECT x.f, x.t, count(*), (count(*)::double precision
                                / sum(count(*)) OVER (PARTITION BY x.f))::real
    FROM (SELECT e.category_key AS t,
                 lag(e.category_key) OVER (PARTITION BY e.user_key ORDER BY e.ts, e.event_id) AS f
          FROM recsys.events e) x
    WHERE x.f IS NOT NULL AND x.t IS NOT NULL
    GROUP BY x.f, x.t;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    INSERT INTO recsys.meta (key, value)
    VALUES ('category_transitions_refreshed_at', to_jsonb(now()))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    RETURN v_rows;
END
$$;

-- Wake the live worker once per inserting statement (not per row: bulk loads stay cheap).
CREATE FUNCTION recsys.notify_new_events() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('recsys_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON recsys.events
FOR EACH STATEMENT EXECUTE FUNCTION recsys.notify_new_events();

-- A user's category shares: long-term (all events), recent (exponentially time-decayed with
-- `half_life`, measured back from the user's latest event) - both weighted by behavior weight -
-- and the active interest model's predicted next-category distribution (top categories).
CREATE FUNCTION recsys.interest_profile(user_id text, half_life interval DEFAULT '1 day')
RETURNS TABLE (category_id text, long_term_share double precision,
               recent_share double precision, predicted_next_share double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF half_life IS NULL OR half_life <= interval '0' THEN
        RAISE EXCEPTION 'interest_profile: half_life must be positive, got %', half_life
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH u AS (SELECT us.user_key FROM recsys.users us WHERE us.user_id = interest_profile.user_id),
    ev AS (SELECT e.category_key, e.ts, b.weight
           FROM recsys.events e JOIN u ON u.user_key = e.user_key
           JOIN recsys.behavior_types b ON b.behavior_key = e.behavior_key
           WHERE e.category_key IS NOT NULL),
    agg AS (SELECT ev.category_key, sum(ev.weight)::double precision AS lt,
                   sum(ev.weight * exp(-ln(2) * extract(epoch FROM (m.t - ev.ts))
                                        / extract(epoch FROM half_life))) AS rc
            FROM ev CROSS JOIN (SELECT max(ts) AS t FROM ev) m GROUP BY ev.category_key),
    pred AS (SELECT p.category_key, p.prob::double precision AS prob
             FROM recsys.user_states s JOIN u ON u.user_key = s.user_key
             JOIN recsys.model_versions v
               ON v.version_id = s.version_id AND v.kind = 'interest' AND v.active
             CROSS JOIN LATERAL unnest(s.next_categories, s.next_category_probs)
                 AS p(category_key, prob)),
    shares AS (SELECT coalesce(a.category_key, p.category_key) AS category_key,
                      coalesce(a.lt / nullif(sum(a.lt) OVER (), 0), 0) AS lt,
                      coalesce(a.rc / nullif(sum(a.rc) OVER (), 0), 0) AS rc,
                      coalesce(p.prob, 0) AS pr
               FROM agg a FULL JOIN pred p ON p.category_key = a.category_key)
    SELECT c.category_id, s.lt, s.rc, s.pr
    FROM shares s JOIN recsys.categories c ON c.category_key = s.category_key
    ORDER BY s.rc DESC, s.pr DESC, s.lt DESC, c.category_id;
END
$$;

-- How far a user's recent interests moved from their long-term ones: the Jensen-Shannon
-- divergence (base 2, in [0, 1]) of the two category distributions, and the categories
-- gaining and losing most share (up to 5 each, those moving by more than 2 points).
CREATE FUNCTION recsys.interest_drift(user_id text, half_life interval DEFAULT '1 day')
RETURNS TABLE (drift double precision, gaining text[], losing text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS (SELECT * FROM recsys.interest_profile(user_id, half_life)
               WHERE long_term_share > 0 OR recent_share > 0),
    m AS (SELECT p.*, (p.long_term_share + p.recent_share) / 2 AS mid FROM p)
    SELECT CASE WHEN count(*) = 0 THEN NULL ELSE
             0.5 * sum(CASE WHEN long_term_share > 0
                            THEN long_term_share * log(2.0, (long_term_share / mid)::numeric)
                            ELSE 0 END)
           + 0.5 * sum(CASE WHEN recent_share > 0
                            THEN recent_share * log(2.0, (recent_share / mid)::numeric)
                            ELSE 0 END) END::double precision,
           coalesce((array_agg(category_id ORDER BY recent_share - long_term_share DESC)
                     FILTER (WHERE recent_share - long_term_share > 0.02))[1:5], '{}'),
           coalesce((array_agg(category_id ORDER BY recent_share - long_term_share)
                     FILTER (WHERE long_term_share - recent_share > 0.02))[1:5], '{}')
    FROM m
$$;
