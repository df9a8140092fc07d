"""Interest model: model blobs, category transitions, interest_profile/drift, worker signal.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from recsys_db.sqlfiles import apply

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply(op.get_bind(), "0002_interest.sql")


def downgrade() -> None:
    op.get_bind().exec_driver_sql(
        "DROP FUNCTION recsys.interest_drift(text, interval);"
        "DROP FUNCTION recsys.interest_profile(text, interval);"
        "DROP TRIGGER events_notify ON recsys.events;"
        "DROP FUNCTION recsys.notify_new_events();"
        "DROP FUNCTION recsys.refresh_category_transitions();"
        "DROP TABLE recsys.category_transitions;"
        "DROP TABLE recsys.model_blobs;"
    )
