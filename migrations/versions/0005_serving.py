"""Serving: category vectors for items without embeddings; decay without exp() underflow.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from recsys_db.sqlfiles import apply, restore_functions

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0005_serving.sql")


def downgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("DROP FUNCTION recsys.refresh_category_embeddings(integer);"
                         "DROP TABLE recsys.category_embeddings;")
    restore_functions(bind, "0003_recommend.sql", "recsys.candidate_features_query")
    restore_functions(bind, "0002_interest.sql", "recsys.interest_profile")
    bind.exec_driver_sql("SELECT recsys.install_serving()")
