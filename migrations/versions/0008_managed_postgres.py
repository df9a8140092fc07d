"""Managed PostgreSQL: works as a NOSUPERUSER database owner; race-free monthly partitions.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from recsys_db.sqlfiles import apply, restore_functions

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0008_managed_postgres.sql")


def downgrade() -> None:
    bind = op.get_bind()
    restore_functions(bind, "0001_events.sql", "recsys.ensure_events_partition")
    restore_functions(bind, "0003_recommend.sql", "recsys.similar_items")
    restore_functions(bind, "0006_serving_speed.sql", "recsys.candidate_features",
                      "recsys.install_serving")
    apply(bind, "0008_down.sql")
