"""Stay or migrate: user states carry the model's whole next-item distribution; the vector source
serves it (the stay part for recent items, the migrate part through HNSW), and p_migrate.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from recsys_db.sqlfiles import apply, restore_functions

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0009_stay_migrate.sql")


def downgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("DROP FUNCTION recsys.about_to_migrate(integer, double precision)")
    bind.exec_driver_sql("DROP FUNCTION recsys.interest_drift(text, interval)")
    restore_functions(bind, "0002_interest.sql", "recsys.interest_drift")
    bind.connection.driver_connection.execute(  # no parameters: % stays literal
        "DO $do$ DECLARE v_role text := (SELECT value #>> '{}' FROM recsys.meta"
        " WHERE key = 'app_role'); BEGIN"
        " REVOKE ALL ON FUNCTION recsys.interest_drift(text, interval) FROM PUBLIC;"
        " IF v_role IS NOT NULL AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN"
        " EXECUTE format('GRANT EXECUTE ON FUNCTION recsys.interest_drift(text, interval)"
        " TO %I', v_role); END IF; END $do$")
    restore_functions(bind, "0007_repeat_feature.sql", "recsys.candidate_features_query")
    bind.exec_driver_sql("ALTER TABLE recsys.user_states DROP COLUMN p_migrate, "
                         "DROP COLUMN stay_query, DROP COLUMN stay_items, DROP COLUMN stay_bias, "
                         "DROP COLUMN log_stay, DROP COLUMN migrate_offset")
    bind.exec_driver_sql("SELECT recsys.install_serving()")
