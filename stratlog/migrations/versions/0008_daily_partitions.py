"""PostgreSQL: a new audit table is partitioned by day (``PARTITION BY RANGE (created_at)``).

An empty ``strategy_execution_log`` (a new database) is created again as a partitioned table:
the same columns, checks and indexes, the primary key ``(id, created_at)``, a default
partition, and the partitions of today and the next days (``stratlog.partitions``). Its ids go
on from the old identity's position and the rollup watermark: ids only ever grow.

A table that holds rows stays as it is: rebuilding it here would hold an ACCESS EXCLUSIVE lock
for as long as copying every row takes. ``stratlog partitions convert`` converts it in batches
while the writers go on (docs/scaling.md). ``stratlog db upgrade --no-partitions`` (the
``partitioned`` attribute of the Alembic config set to ``False``) keeps a new table plain.

SQLite: nothing (one file; retention deletes rows).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from stratlog import partitions

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = partitions.PARENT


def _next_id(bind: sa.Connection) -> int:
    """One above every id the old table handed out and the rollup watermark."""
    sequence = bind.scalar(sa.text(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')"))
    used = 0
    if sequence is not None:
        used = bind.scalar(sa.text(f"SELECT {partitions.HANDED_OUT} FROM {sequence}"))  # noqa: S608
    mark = bind.scalar(sa.text("SELECT coalesce(max(watermark), 0) FROM stratlog_rollup_state"))
    top = bind.scalar(sa.text(f"SELECT coalesce(max(id), 0) FROM {TABLE}"))  # noqa: S608
    return max(int(used or 0), int(mark or 0), int(top or 0)) + 1


def _kind(bind: sa.Connection) -> str | None:
    kind = bind.scalar(sa.text(partitions.RELKIND_SQL), {"t": TABLE})
    return None if kind is None else str(kind)


def _rebuild(bind: sa.Connection, *, partitioned: bool) -> None:
    op.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    start = _next_id(bind)
    op.execute(f"DROP TABLE {TABLE}")
    for statement in partitions.create_table_statements(start, partitioned=partitioned):
        op.execute(statement)


def upgrade() -> None:
    """Partition an empty audit table; leave one with rows (or ``partitioned=False``) plain."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if not op.get_context().config.attributes.get("partitioned", True):  # type: ignore[union-attr]
        return
    if _kind(bind) == "p":
        return
    # Locked before the look: a row committed between an empty look and the rebuild would be
    # dropped with the old table.
    op.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    if bind.scalar(sa.text(f"SELECT EXISTS (SELECT 1 FROM {TABLE})")):  # noqa: S608
        return  # `stratlog partitions convert`
    _rebuild(bind, partitioned=True)
    today = datetime.now(UTC).date()
    for day in partitions.days(today, today + timedelta(days=partitions.AHEAD_DAYS)):
        for statement in partitions.attach_statements(day):
            op.execute(statement)


def downgrade() -> None:
    """An empty partitioned table becomes the plain one again; one with rows is refused."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or _kind(bind) != "p":
        return
    op.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")  # no row arrives meanwhile
    if bind.scalar(sa.text(f"SELECT EXISTS (SELECT 1 FROM {TABLE})")):  # noqa: S608
        raise RuntimeError(
            f"{TABLE} is partitioned and holds rows: copy them into a plain table by hand "
            "before downgrading below 0008 (docs/scaling.md)"
        )
    _rebuild(bind, partitioned=False)
