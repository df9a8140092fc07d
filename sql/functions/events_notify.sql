-- Wake the live worker once per inserting statement (not per row: bulk loads stay cheap).
CREATE OR REPLACE FUNCTION recsys.notify_new_events() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('recsys_events', '');
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON recsys.events
FOR EACH STATEMENT EXECUTE FUNCTION recsys.notify_new_events();
