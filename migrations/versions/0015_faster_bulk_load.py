"""Faster bulk loads (issue 15): a bulk load inserts its new items by a plain INSERT and updates
only the stored items whose first_seen or missing category it changes, instead of an ON CONFLICT
upsert of every item it names; timestamps take a cheaper digits test. The event doors hold a
shared advisory lock on the item rows and recsys.forget_users an exclusive one, so a forget
deletes no item a running load or track_event is storing events of.

Upgrade: the function files `event_rules`, `forgotten`, `track_event`, `bulk_load` and
`forget_user` again. Downgrade: nothing (the functions keep their current bodies, like
0008-0014).

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
FUNCTIONS: tuple[str, ...] = ("event_rules", "forgotten", "track_event", "bulk_load",
                               "forget_user")


def upgrade() -> None:
    bind = op.get_bind()
    apply_functions(bind, *FUNCTIONS)
    apply_grants(bind)


def downgrade() -> None:
    pass
