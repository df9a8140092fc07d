"""Consistent serving during an activation: the generated serving function serves the interest
version baked into it, not the one its caller read under an older snapshot.

Upgrades a database of release 0009 (sql/functions/install_serving.sql); the downgrade changes
nothing (the current body is the only one kept).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from recsys_db.sqlfiles import apply_functions, install_serving

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    apply_functions(bind, "install_serving")
    install_serving(bind)


def downgrade() -> None:
    pass
