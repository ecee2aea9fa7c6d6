"""Rollup tables, the rollup watermark, and a covering index for index-only edge scans.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from stratlog.dialect import BigIntPK, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COVERING = [  # the model's COVERING_INDEX_COLUMNS as of this revision
    "strategy_id", "created_at", "status", "error_code", "case_name", "duration_ms", "nodes",
    "points", "id",
]  # fmt: skip


def upgrade() -> None:
    """Create the rollup tables and swap the (strategy_id, created_at) index for a covering one."""
    op.create_table(
        "strategy_execution_rollup",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("strategy_id", sa.String(200), nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket_epoch", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(100), nullable=True),
        sa.Column("case_name", sa.String(200), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("dur_sum", sa.Double(), nullable=False),
        sa.Column("dur_min", sa.Double(), nullable=False),
        sa.Column("dur_max", sa.Double(), nullable=False),
        sa.Column("nodes_sum", sa.BigInteger(), nullable=False),
        sa.Column("nodes_min", sa.BigInteger(), nullable=False),
        sa.Column("nodes_max", sa.BigInteger(), nullable=False),
        sa.Column("points_sum", sa.Double(), nullable=True),
        sa.Column("points_n", sa.BigInteger(), nullable=False),
        sa.Column("created_max", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_strategy_execution_rollup_lookup",
        "strategy_execution_rollup",
        ["strategy_id", "grain", "bucket_epoch"],
    )
    op.create_table(
        "strategy_execution_bin",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("strategy_id", sa.String(200), nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket_epoch", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_strategy_execution_bin_lookup",
        "strategy_execution_bin",
        ["strategy_id", "kind", "grain", "bucket_epoch", "bin", "n"],
    )
    op.create_table(
        "stratlog_rollup_state",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
    )
    op.execute("INSERT INTO stratlog_rollup_state (name, watermark) VALUES ('default', 0)")
    op.create_index("ix_strategy_execution_log_covering", "strategy_execution_log", COVERING)
    op.drop_index("ix_strategy_execution_log_strategy_created", "strategy_execution_log")


def downgrade() -> None:
    """Back to revision 0001."""
    op.create_index(
        "ix_strategy_execution_log_strategy_created",
        "strategy_execution_log",
        ["strategy_id", "created_at"],
    )
    op.drop_index("ix_strategy_execution_log_covering", "strategy_execution_log")
    op.drop_table("stratlog_rollup_state")
    op.drop_table("strategy_execution_bin")
    op.drop_table("strategy_execution_rollup")
