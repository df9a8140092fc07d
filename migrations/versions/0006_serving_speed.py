"""Serving speed: a cached generic plan for the candidate query, purchases read once.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from recsys_db.sqlfiles import apply, restore_functions

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0006_serving_speed.sql")


def downgrade() -> None:
    bind = op.get_bind()
    restore_functions(bind, "0005_serving.sql", "recsys.candidate_features_query")
    restore_functions(bind, "0003_recommend.sql", "recsys.candidate_features",
                      "recsys.rank_candidates", "recsys.install_serving")
    apply(bind, "0006_down.sql")
