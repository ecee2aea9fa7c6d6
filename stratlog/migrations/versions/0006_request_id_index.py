"""An index on ``request_id``: a support ticket names a request, and finding its run must be an
index lookup at any table size (across every strategy), not a scan.

The migration runs in the upgrade's transaction, so on PostgreSQL ``CREATE INDEX`` holds a SHARE
lock while it builds: writers wait (seconds per 10 million rows on this project's benchmark
machine). On a large, busy table create it by hand first, without blocking writers::

    CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_strategy_execution_log_request_id
        ON strategy_execution_log (request_id);

then run ``stratlog db upgrade``: the index exists, and the revision only records itself.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "strategy_execution_log"
INDEX = "ix_strategy_execution_log_request_id"


def upgrade() -> None:
    """Create the index unless it exists (e.g. built concurrently by hand)."""
    op.create_index(INDEX, TABLE, ["request_id"], if_not_exists=True)


def downgrade() -> None:
    """Drop the index."""
    op.drop_index(INDEX, table_name=TABLE)
