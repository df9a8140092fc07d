"""Consistent serving during an activation: the generated serving function serves the interest
version baked into it, not the one its caller read under an older snapshot.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from recsys_db.sqlfiles import apply, restore_functions

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0010_consistent_serving.sql")


def downgrade() -> None:
    bind = op.get_bind()
    restore_functions(bind, "0008_managed_postgres.sql", "recsys.install_serving")
    bind.exec_driver_sql("SELECT recsys.install_serving()")
