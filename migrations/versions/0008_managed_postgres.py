"""Managed PostgreSQL: works as a NOSUPERUSER database owner; race-free monthly partitions.

Upgrades a database of release 0007; on one the baseline installed it re-applies what is
already there. The downgrade changes nothing: the functions keep their current bodies (an
older body is not kept anywhere), and those need what this revision added.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from recsys_db.sqlfiles import apply, apply_functions, install_serving

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    apply_functions(bind, "hnsw", "events_partition", "candidate_features", "similar_items",
                    "install_serving")
    apply(bind, "upgrades/0008_managed_postgres.sql")
    install_serving(bind)


def downgrade() -> None:
    pass
