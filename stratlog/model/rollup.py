"""Rollup tables: one per kind of panel, each keyed by what that panel shows.

The rollup job (``stratlog.rollups``) folds audit rows into these tables up to a watermark id
kept in ``stratlog_rollup_state``; readers combine whole buckets from here with raw rows for the
window's edges and for everything after the watermark, so their answers stay exact.

Every table is keyed by strategy, grain (the bucket size in seconds), bucket start (epoch
seconds) and strategy version, then by what its panel groups by:

- :class:`StatusRollup` by status: run counts, duration / nodes / points sums, minima and
  maxima, and how many runs had no rule case. The timeseries, the headline figures, the summary,
  the strategy picker and the "no rule matched" bucket read it; 10-minute, hourly and daily.
- :class:`CodeRollup` by error code (rows with a code only): top error codes, hourly counts per
  code; hourly and daily.
- :class:`CaseRollup` by status and rule case (rows with a case only): top rule cases; hourly
  and daily.
- :class:`BinsRollup` by kind (duration, points, nodes): the whole log-bin histogram of one
  bucket as one packed value (:mod:`stratlog.sketch`), so that a strategy with a few runs an hour
  stores a few bytes per run rather than a row per occupied bin; hourly and daily.

The version is part of every key, so per-version figures come from the same rows: a strategy
runs one version at a time except around a deploy, so this costs next to no rows. It is stored
NOT NULL (``''`` plus ``version_null = 1`` for a run without a version), as every key column is,
so that the primary key is also the key of the job's upserts on both backends. The primary key
is the table on SQLite (``WITHOUT ROWID``): no separate index, half the bytes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Double, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from stratlog.dialect import UTCDateTime
from stratlog.model.base import Base

_WITHOUT_ROWID: dict[str, Any] = {"sqlite_with_rowid": False}


class _Keyed:
    """The key every rollup table starts with: strategy, grain, bucket, version."""

    # sort_order: the key columns come first in the table and its primary key (a mixin's
    # columns would otherwise follow the class's own).
    strategyId: Mapped[str] = mapped_column(
        "strategy_id", String(200), primary_key=True, sort_order=-5
    )
    grain: Mapped[int] = mapped_column("grain", Integer, primary_key=True, sort_order=-4)
    bucketEpoch: Mapped[int] = mapped_column(
        "bucket_epoch", BigInteger, primary_key=True, sort_order=-3
    )
    version: Mapped[str] = mapped_column("version", String(100), primary_key=True, sort_order=-2)
    versionNull: Mapped[int] = mapped_column(
        "version_null", SmallInteger, primary_key=True, sort_order=-1
    )


class StatusRollup(_Keyed, Base):
    """Aggregates of the runs of one strategy, bucket, version and status."""

    __tablename__ = "strategy_execution_rollup_status"
    __table_args__ = (_WITHOUT_ROWID,)

    status: Mapped[str] = mapped_column("status", String(16), primary_key=True)
    n: Mapped[int] = mapped_column("n", BigInteger)
    durSum: Mapped[float] = mapped_column("dur_sum", Double)
    durMin: Mapped[float] = mapped_column("dur_min", Double)
    durMax: Mapped[float] = mapped_column("dur_max", Double)
    nodesSum: Mapped[int] = mapped_column("nodes_sum", BigInteger)
    nodesMin: Mapped[int] = mapped_column("nodes_min", BigInteger)
    nodesMax: Mapped[int] = mapped_column("nodes_max", BigInteger)
    pointsSum: Mapped[float | None] = mapped_column("points_sum", Double)
    pointsN: Mapped[int] = mapped_column("points_n", BigInteger)
    #: Runs without a rule case (``caseName`` null): the case panel's ``None`` bucket.
    noCaseN: Mapped[int] = mapped_column("no_case_n", BigInteger)
    createdMax: Mapped[datetime] = mapped_column("created_max", UTCDateTime)


class CodeRollup(_Keyed, Base):
    """How many runs of one strategy, bucket and version ended with one error code."""

    __tablename__ = "strategy_execution_rollup_code"
    __table_args__ = (_WITHOUT_ROWID,)

    errorCode: Mapped[str] = mapped_column("error_code", String(100), primary_key=True)
    n: Mapped[int] = mapped_column("n", BigInteger)


class CaseRollup(_Keyed, Base):
    """How many runs of one strategy, bucket, version and status fired one rule case."""

    __tablename__ = "strategy_execution_rollup_case"
    __table_args__ = (_WITHOUT_ROWID,)

    status: Mapped[str] = mapped_column("status", String(16), primary_key=True)
    caseName: Mapped[str] = mapped_column("case_name", String(200), primary_key=True)
    n: Mapped[int] = mapped_column("n", BigInteger)


class BinsRollup(_Keyed, Base):
    """The log-bin histogram of durations, points or nodes of one strategy, bucket and version.

    ``bins`` is :func:`stratlog.sketch.pack` of the (bin, count) pairs; ``n`` their total.
    """

    __tablename__ = "strategy_execution_rollup_bins"
    __table_args__ = (_WITHOUT_ROWID,)

    kind: Mapped[int] = mapped_column("kind", SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column("n", BigInteger)
    bins: Mapped[bytes] = mapped_column("bins", LargeBinary)


ROLLUP_TABLES: tuple[type[Base], ...] = (StatusRollup, CodeRollup, CaseRollup, BinsRollup)


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
