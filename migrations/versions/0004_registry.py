"""Model registry: activation log (rollback) and recsys.drop_model_version (gc, clean-up).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from recsys_db.sqlfiles import apply

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0004_registry.sql")


def downgrade() -> None:
    op.get_bind().exec_driver_sql(
        "DROP FUNCTION recsys.drop_model_version(integer, boolean);"
        "DROP TABLE recsys.model_activations;"
    )
