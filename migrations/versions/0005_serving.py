"""Serving: category vectors for items without embeddings; decay without exp() underflow.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from recsys_db.sqlfiles import apply

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0005_serving.sql")


def downgrade() -> None:
    apply(op.get_bind(), "0005_down.sql")
