-- Category -> next category over consecutive events of a user (a job refreshes it).
CREATE OR REPLACE FUNCTION recsys.refresh_category_transitions() RETURNS bigint
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
