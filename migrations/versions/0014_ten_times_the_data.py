"""Ten times the data, second part (issue 15): new events of a bulk load go in by a plain
INSERT, with ON CONFLICT only when the load holds a duplicate, and the events' monthly
partitions are found from the load's time range; the candidate query probes each recent item's
CF neighbours by primary key whatever the planner's statistics say.

Upgrade: the function files `bulk_load` and `candidate_query` again, then the grants and the
generated serving functions (rebuilt from the new candidate query). Downgrade: nothing (the
functions keep their current bodies, like 0008-0013).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

from recsys_db.sqlfiles import apply_functions, apply_grants, install_serving

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# sql/functions/ files this revision (re)creates, in sqlfiles.FUNCTION_FILES order
FUNCTIONS: tuple[str, ...] = ("bulk_load", "candidate_query")


def upgrade() -> None:
    bind = op.get_bind()
    apply_functions(bind, *FUNCTIONS)
    apply_grants(bind)
    install_serving(bind)


def downgrade() -> None:
    pass
