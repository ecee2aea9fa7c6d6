"""A partial index on the runs that did not end ok: ``(strategy_id, created_at) WHERE status <>
'ok'``. The insights sample failing runs' payloads across a window, and the runbook lists failed
runs newest first; with failures rare (a few in 10,000 runs) a range of the covering index holds
mostly ok runs, and finding the failing ones walked all of them. This index holds the failing
runs only (a few percent of the table's rows), so both read just what they return.

The migration runs in the upgrade's transaction, so on PostgreSQL ``CREATE INDEX`` holds a SHARE
lock while it builds: writers wait. On a large, busy table create it by hand first, without
blocking writers::

    CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_strategy_execution_log_failed
        ON strategy_execution_log (strategy_id, created_at) WHERE status <> 'ok';

then run ``stratlog db upgrade``: the index exists, and the revision only records itself.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLE = "strategy_execution_log"
INDEX = "ix_strategy_execution_log_failed"
WHERE = sa.text("status <> 'ok'")


def upgrade() -> None:
    """Create the index unless it exists (e.g. built concurrently by hand)."""
    op.create_index(
        INDEX, TABLE, ["strategy_id", "created_at"], if_not_exists=True,
        postgresql_where=WHERE, sqlite_where=WHERE,
    )  # fmt: skip


def downgrade() -> None:
    """Drop the index."""
    op.drop_index(INDEX, table_name=TABLE)
