"""Scale out (issue 15): serving from read replicas, ten times the data, faster serving.

Upgrade: `sql/upgrades/0013_scale_out.sql` when present (new tables or columns), then the
function files in FUNCTIONS, the grants and the generated serving functions. Downgrade: the
functions it only re-applied keep their current bodies (like 0008-0012); anything the upgrade
file adds is dropped by `sql/upgrades/0013_scale_out_down.sql` when present.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

from recsys_db.config import SQL_DIR
from recsys_db.sqlfiles import apply, apply_functions, apply_grants, install_serving

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# sql/functions/ files this revision (re)creates, in sqlfiles.FUNCTION_FILES order
FUNCTIONS: tuple[str, ...] = (
    "drop_model_version", "rank_candidates", "precompute_candidates",
)


def upgrade() -> None:
    bind = op.get_bind()
    if (SQL_DIR / "upgrades/0013_scale_out.sql").exists():
        apply(bind, "upgrades/0013_scale_out.sql")
    if FUNCTIONS:
        apply_functions(bind, *FUNCTIONS)
    apply_grants(bind)
    install_serving(bind)


def downgrade() -> None:
    if (SQL_DIR / "upgrades/0013_scale_out_down.sql").exists():
        apply(op.get_bind(), "upgrades/0013_scale_out_down.sql")
