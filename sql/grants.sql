-- Least privilege for applications. Run after every function exists, with the role's name in the
-- setting recsys.app_role (RECSYS_APP_ROLE, default recsys_app; quoted by format()). The role may
-- execute the public functions only; it cannot read or write any table. Nobody else may execute
-- any function of schema recsys (functions created later - compiled rankers - excepted).
DO $do$
DECLARE
    v_role text := current_setting('recsys.app_role');
    v_fn regprocedure;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
    END IF;
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA recsys FROM PUBLIC';
    EXECUTE format('GRANT USAGE ON SCHEMA recsys TO %I', v_role);
    -- by name, whatever the argument list (a revision that changes one, such as 0012's
    -- recommend, runs after earlier revisions re-applied this file)
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'recsys'::regnamespace
          AND p.proname IN ('recommend', 'similar_items', 'recommend_for_session', 'track_event',
                            'interest_profile', 'interest_drift', 'about_to_migrate',
                            'set_item_active', 'exclude_item', 'forget_user', 'forget_users')
        ORDER BY p.oid
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn, v_role);
    END LOOP;
    INSERT INTO recsys.meta (key, value) VALUES ('app_role', to_jsonb(v_role))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
END
$do$;
