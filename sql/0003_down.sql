-- Downgrade of revision 0003. The app role's name is in setting recsys.app_role (from meta).
DROP FUNCTION IF EXISTS recsys.recommend_for_session(text[], integer);
DROP FUNCTION IF EXISTS recsys.similar_items(text, integer);
DROP FUNCTION IF EXISTS recsys.recommend(text, integer, text, boolean);
DROP FUNCTION IF EXISTS recsys.rank_candidates(integer, integer, integer, boolean);
DROP FUNCTION IF EXISTS recsys.install_serving();
DROP FUNCTION IF EXISTS recsys.serving_candidates(integer, timestamptz, integer, integer, integer, integer);
DROP FUNCTION IF EXISTS recsys.serving_score(double precision[]);
DROP FUNCTION IF EXISTS recsys.candidate_features_query(integer);
DROP FUNCTION IF EXISTS recsys.reason_text(text, text, text);
DROP FUNCTION IF EXISTS recsys.default_rank_score(double precision[]);
DROP FUNCTION IF EXISTS recsys.candidate_features(integer, timestamptz, integer, integer, integer, integer);
DROP FUNCTION IF EXISTS recsys.ranker_feature_names();
DROP FUNCTION IF EXISTS recsys.refresh_item_stats(integer, timestamptz);
DROP TABLE IF EXISTS recsys.item_stats;
DROP TABLE IF EXISTS recsys.item_neighbors;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA recsys TO PUBLIC;
DO $do$
DECLARE
    v_role text := nullif(current_setting('recsys.app_role', true), '');
BEGIN
    DELETE FROM recsys.meta WHERE key = 'app_role';
    IF v_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
        RETURN;
    END IF;
    EXECUTE format('REVOKE ALL ON SCHEMA recsys FROM %I', v_role);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA recsys FROM %I', v_role);
    BEGIN  -- the role is cluster-wide: it stays while another database still grants it
        EXECUTE format('DROP ROLE %I', v_role);
    EXCEPTION WHEN dependent_objects_still_exist THEN
        RAISE NOTICE 'role % kept: other databases still grant it privileges', v_role;
    WHEN insufficient_privilege THEN  -- an admin made it (the owner has no CREATEROLE/ADMIN)
        RAISE NOTICE 'role % kept: this role may not drop it', v_role;
    END;
END
$do$;
