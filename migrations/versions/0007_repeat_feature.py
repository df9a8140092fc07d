"""Repeat feature: a long-memory, behavior-weighted score of the user's own items (feature 16).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from recsys_db.sqlfiles import apply, restore_functions

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0007_repeat_feature.sql")


def downgrade() -> None:
    bind = op.get_bind()
    restore_functions(bind, "0003_recommend.sql", "recsys.ranker_feature_names")
    restore_functions(bind, "0006_serving_speed.sql", "recsys.candidate_features_query")
    bind.exec_driver_sql("SELECT recsys.install_serving()")
