"""Least privilege: nobody but the owner may execute recsys.drop_model_version and
recsys.refresh_category_embeddings (revisions 0004 and 0005 created them after 0003 had revoked
PUBLIC's EXECUTE from every function, so PUBLIC, the application role included, kept it).

Re-applies sql/grants.sql; the downgrade changes nothing (it added nothing).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

from recsys_db.sqlfiles import apply_grants

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_grants(op.get_bind())


def downgrade() -> None:
    pass
