"""Stay or migrate: user states carry the model's whole next-item distribution; the vector source
serves it (the stay part for recent items, the migrate part through HNSW), and p_migrate.

Upgrades a database of release 0008; on one the baseline installed it re-applies what is
already there. The downgrade changes nothing: the functions keep their current bodies (an
older body is not kept anywhere), and those read the columns this revision added.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from recsys_db.sqlfiles import apply, apply_functions, apply_grants, install_serving

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    apply(bind, "upgrades/0009_stay_migrate.sql")
    apply_functions(bind, "candidate_query", "interest_drift", "about_to_migrate")
    apply_grants(bind)  # interest_drift was created again; about_to_migrate is new
    install_serving(bind)


def downgrade() -> None:
    pass
