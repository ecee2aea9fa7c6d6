"""Rollup tables: per strategy x bucket x outcome aggregates and log-bin histograms.

The rollup job (``stratlog.rollups``) folds audit rows into these tables up to a watermark id
kept in ``stratlog_rollup_state``; readers combine whole buckets from here with raw rows for the
window's edges and for everything after the watermark, so their answers stay exact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Double, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from stratlog.dialect import BigIntPK, UTCDateTime
from stratlog.model.base import Base


class StrategyExecutionRollup(Base):
    """Aggregates of the rows of one strategy, one bucket and one (status, code, case).

    ``grain`` is the bucket size in seconds: 600, 3600 or 86400 (10 minutes, hours, days), each
    folded from the audit rows by the rollup job and merged to one row per key.
    """

    __tablename__ = "strategy_execution_rollup"
    __table_args__ = (
        Index("ix_strategy_execution_rollup_lookup", "strategy_id", "grain", "bucket_epoch"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    strategyId: Mapped[str] = mapped_column("strategy_id", String(200))
    grain: Mapped[int] = mapped_column("grain", Integer)
    bucketEpoch: Mapped[int] = mapped_column("bucket_epoch", BigInteger)
    status: Mapped[str] = mapped_column("status", String(16))
    errorCode: Mapped[str | None] = mapped_column("error_code", String(100))
    caseName: Mapped[str | None] = mapped_column("case_name", String(200))
    n: Mapped[int] = mapped_column("n", BigInteger)
    durSum: Mapped[float] = mapped_column("dur_sum", Double)
    durMin: Mapped[float] = mapped_column("dur_min", Double)
    durMax: Mapped[float] = mapped_column("dur_max", Double)
    nodesSum: Mapped[int] = mapped_column("nodes_sum", BigInteger)
    nodesMin: Mapped[int] = mapped_column("nodes_min", BigInteger)
    nodesMax: Mapped[int] = mapped_column("nodes_max", BigInteger)
    pointsSum: Mapped[float | None] = mapped_column("points_sum", Double)
    pointsN: Mapped[int] = mapped_column("points_n", BigInteger)
    createdMax: Mapped[datetime] = mapped_column("created_max", UTCDateTime)


class StrategyExecutionBin(Base):
    """How many durations (kind 0) or points (kind 1) of one strategy and bucket fell in a bin."""

    __tablename__ = "strategy_execution_bin"
    __table_args__ = (
        # Covering: percentile queries read (bin, n) for a strategy, kind, grain and bucket
        # range from the index alone.
        Index(
            "ix_strategy_execution_bin_lookup",
            *("strategy_id", "kind", "grain", "bucket_epoch", "bin", "n"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    strategyId: Mapped[str] = mapped_column("strategy_id", String(200))
    grain: Mapped[int] = mapped_column("grain", Integer)
    bucketEpoch: Mapped[int] = mapped_column("bucket_epoch", BigInteger)
    kind: Mapped[int] = mapped_column("kind", SmallInteger)
    bin: Mapped[int] = mapped_column("bin", Integer)
    n: Mapped[int] = mapped_column("n", BigInteger)


class RollupState(Base):
    """The rollup's watermark: every audit row with ``id <= watermark`` is in the rollups."""

    __tablename__ = "stratlog_rollup_state"

    name: Mapped[str] = mapped_column("name", String(50), primary_key=True)
    watermark: Mapped[int] = mapped_column("watermark", BigInteger)
    updatedAt: Mapped[datetime | None] = mapped_column("updated_at", UTCDateTime)


class RecorderHealth(Base):
    """The counters a recorder process last published (see ``stratlog.service.health``)."""

    __tablename__ = "stratlog_recorder_health"

    name: Mapped[str] = mapped_column("name", String(200), primary_key=True)
    kind: Mapped[str] = mapped_column("kind", String(20))
    submitted: Mapped[int] = mapped_column("submitted", BigInteger)
    written: Mapped[int] = mapped_column("written", BigInteger)
    dropped: Mapped[int] = mapped_column("dropped", BigInteger)
    failed: Mapped[int] = mapped_column("failed", BigInteger)
    pending: Mapped[int] = mapped_column("pending", BigInteger)
    lastError: Mapped[str | None] = mapped_column("last_error", String(500))
    updatedAt: Mapped[datetime] = mapped_column("updated_at", UTCDateTime)
