"""Data lifecycle (issue 14): forgetting users, bounded storage, the item catalog, exclusions
and reasons that are always true.

Upgrade: `sql/upgrades/0012_data_lifecycle.sql` (new tables and columns), then the function
files in FUNCTIONS, the grants and the generated serving functions. Downgrade:
`sql/upgrades/0012_data_lifecycle_down.sql` drops what the upgrade added (functions it
created, tables, columns); functions it only re-applied keep their current bodies.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

from recsys_db.sqlfiles import apply, apply_functions, apply_grants, install_serving

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# sql/functions/ files this revision (re)creates, in sqlfiles.FUNCTION_FILES order
FUNCTIONS: tuple[str, ...] = (
    "check_k",  # one check of k for recommend, similar_items, recommend_for_session
    "forgotten",  # forget a user
    "entity_keys",  # catalog: an item's first event sets first_seen
    "track_event", "bulk_load",  # forget a user (bulk_load: catalog's first_seen too)
    # catalog, exclusions, reasons
    "category_embeddings",
    "forget_user",  # forget a user
    "candidate_query", "rank_candidates", "recommend", "similar_items",
    "recommend_for_session", "item_catalog", "exclusions",
)


def upgrade() -> None:
    bind = op.get_bind()
    apply(bind, "upgrades/0012_data_lifecycle.sql")
    if FUNCTIONS:
        apply_functions(bind, *FUNCTIONS)
    apply_grants(bind)
    install_serving(bind)


def downgrade() -> None:
    apply(op.get_bind(), "upgrades/0012_data_lifecycle_down.sql")
