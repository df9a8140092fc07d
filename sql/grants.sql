-- Least privilege for applications. Run after every function exists, with the role's name in the
-- setting recsys.app_role (RECSYS_APP_ROLE, default recsys_app; quoted by format()). The role may
-- execute the public functions only; it cannot read or write any table. Nobody else may execute
-- any function of schema recsys (functions created later - compiled rankers - excepted).
DO $do$
DECLARE
    v_role text := current_setting('recsys.app_role');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
    END IF;
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA recsys FROM PUBLIC';
    EXECUTE format('GRANT USAGE ON SCHEMA recsys TO %I', v_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
                   ' recsys.recommend(text, integer, text, boolean),'
                   ' recsys.similar_items(text, integer),'
                   ' recsys.recommend_for_session(text[], integer),'
                   ' recsys.track_event(text, text, text, timestamptz, text),'
                   ' recsys.interest_profile(text, interval),'
                   ' recsys.interest_drift(text, interval),'
                   ' recsys.about_to_migrate(integer, double precision),'
                   ' recsys.forget_user(text), recsys.forget_users(text[]) TO %I', v_role);
    INSERT INTO recsys.meta (key, value) VALUES ('app_role', to_jsonb(v_role))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
END
$do$;
