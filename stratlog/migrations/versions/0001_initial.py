"""The strategy_execution_log table and its (strategy_id, created_at) index.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from stratlog.dialect import BigIntPK, JSONDocument, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the audit table."""
    op.create_table(
        "strategy_execution_log",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("strategy_id", sa.String(200), nullable=False),
        sa.Column("strategy_version", sa.String(100), nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("case_name", sa.String(200), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("points", sa.Double(), nullable=True),
        sa.Column("input_payload", JSONDocument, nullable=True),
        sa.Column("output_payload", JSONDocument, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('ok', 'error', 'timeout', 'limit')", name="ck_sel_status"),
        sa.CheckConstraint("duration_ms >= 0", name="ck_sel_duration_nonnegative"),
        sa.CheckConstraint("nodes >= 0", name="ck_sel_nodes_nonnegative"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_strategy_execution_log_strategy_created",
        "strategy_execution_log",
        ["strategy_id", "created_at"],
    )


def downgrade() -> None:
    """Drop the audit table."""
    op.drop_index("ix_strategy_execution_log_strategy_created", "strategy_execution_log")
    op.drop_table("strategy_execution_log")
