"""Rollups keyed per panel (status, error code, rule case, packed histograms), rebuilt from zero.

The joint key of revision 0002 (strategy x bucket x status x code x case) made every panel read
far more rollup rows than it shows and the histogram bins nearly one row per run for a quiet
strategy. This revision drops those two tables, creates the four of
:mod:`stratlog.model.rollup`, and sets the watermark back to 0, all in one transaction on
PostgreSQL: a reader sees either the old layout with its watermark or the new, empty one, whose
answers are exact from the first moment (every row above the watermark is read raw).

The rebuild is the rollup job catching up from id 0: ``stratlog db upgrade`` runs it right after
the migration with a progress bar, batch by batch, each batch committed with its watermark, so an
interrupted rebuild resumes where it stopped (``stratlog db upgrade`` or ``stratlog rollup``
again); the dashboard and the commands work all along, only slower until it has caught up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from stratlog.dialect import BigIntPK, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WITHOUT_ROWID = {"sqlite_with_rowid": False}


def _key() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("strategy_id", sa.String(200), nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket_epoch", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("version_null", sa.SmallInteger(), nullable=False),
    ]


KEY = ["strategy_id", "grain", "bucket_epoch", "version", "version_null"]


def upgrade() -> None:
    """Drop the joint-key rollups, create the per-panel ones, rebuild from watermark 0.

    The watermark moves first: on SQLite that statement opens the transaction (pysqlite starts
    none for DDL, and Alembic runs SQLite without transactional DDL), so the drops and creates
    that follow join it and the whole revision commits or rolls back as one, as it does on
    PostgreSQL. A reader never sees the new, empty tables with the old watermark.
    """
    op.execute("UPDATE stratlog_rollup_state SET watermark = 0, updated_at = NULL")
    op.drop_table("strategy_execution_bin")
    op.drop_table("strategy_execution_rollup")
    op.create_table(
        "strategy_execution_rollup_status",
        *_key(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("dur_sum", sa.Double(), nullable=False),
        sa.Column("dur_min", sa.Double(), nullable=False),
        sa.Column("dur_max", sa.Double(), nullable=False),
        sa.Column("nodes_sum", sa.BigInteger(), nullable=False),
        sa.Column("nodes_min", sa.BigInteger(), nullable=False),
        sa.Column("nodes_max", sa.BigInteger(), nullable=False),
        sa.Column("points_sum", sa.Double(), nullable=True),
        sa.Column("points_n", sa.BigInteger(), nullable=False),
        sa.Column("no_case_n", sa.BigInteger(), nullable=False),
        sa.Column("created_max", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "status"),
        **WITHOUT_ROWID,
    )
    op.create_table(
        "strategy_execution_rollup_code",
        *_key(),
        sa.Column("error_code", sa.String(100), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "error_code"),
        **WITHOUT_ROWID,
    )
    op.create_table(
        "strategy_execution_rollup_case",
        *_key(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("case_name", sa.String(200), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "status", "case_name"),
        **WITHOUT_ROWID,
    )
    op.create_table(
        "strategy_execution_rollup_bins",
        *_key(),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("bins", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "kind"),
        **WITHOUT_ROWID,
    )


def downgrade() -> None:
    """Back to the joint-key tables of revision 0002 (empty; the job refolds from 0)."""
    op.execute("UPDATE stratlog_rollup_state SET watermark = 0, updated_at = NULL")
    for name in (
        "strategy_execution_rollup_bins",
        "strategy_execution_rollup_case",
        "strategy_execution_rollup_code",
        "strategy_execution_rollup_status",
    ):
        op.drop_table(name)
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
