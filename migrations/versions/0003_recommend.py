"""Recommendation: CF neighbours, item statistics, candidate features, the public API, app role.

Revision ID: 0003
Revises: 0002
"""

import os

from alembic import op

from recsys_db.sqlfiles import apply

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP_ROLE_ENV = "RECSYS_APP_ROLE"


def upgrade() -> None:
    bind = op.get_bind()
    apply(bind, "0003_recommend.sql")
    role = os.environ.get(APP_ROLE_ENV, "recsys_app")
    bind.exec_driver_sql("SELECT set_config('recsys.app_role', %(role)s, true)", {"role": role})
    apply(bind, "0003_app_role.sql")


def downgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql(
        "SELECT set_config('recsys.app_role', coalesce("
        "(SELECT value #>> '{}' FROM recsys.meta WHERE key = 'app_role'), ''), true)")
    apply(bind, "0003_down.sql")
