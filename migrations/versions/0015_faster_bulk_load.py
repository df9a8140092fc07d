"""Faster bulk loads (issue 15): a bulk load inserts its new items by a plain INSERT and updates
only the stored items whose first_seen or missing category it changes, instead of an ON CONFLICT
upsert of every item it names; timestamps take a cheaper digits test.

Upgrade: the function files `event_rules` and `bulk_load` again. Downgrade: nothing (the
functions keep their current bodies, like 0008-0014).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

from recsys_db.sqlfiles import apply_functions, apply_grants

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# sql/functions/ files this revision (re)creates, in sqlfiles.FUNCTION_FILES order
FUNCTIONS: tuple[str, ...] = ("event_rules", "bulk_load")


def upgrade() -> None:
    bind = op.get_bind()
    apply_functions(bind, *FUNCTIONS)
    apply_grants(bind)


def downgrade() -> None:
    pass
