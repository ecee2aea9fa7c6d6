"""The ``StrategyExecutionLog`` row: one per strategy evaluation (see CONTRACT.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import CheckConstraint, Double, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from stratlog.dialect import BigIntPK, JSONDocument, UTCDateTime
from stratlog.model.base import Base

Status = Literal["ok", "error", "timeout", "limit"]
STATUSES: tuple[Status, ...] = ("ok", "error", "timeout", "limit")
COVERING_INDEX_COLUMNS = (
    "strategy_id", "created_at", "status", "error_code", "case_name", "duration_ms", "nodes",
    "points", "id",
)  # fmt: skip


class StrategyExecutionLog(Base):
    """One evaluation of a scoring strategy: outcome, rule case, cost and points."""

    __tablename__ = "strategy_execution_log"
    __table_args__ = (
        # Every dashboard query filters on one strategy and a time window, and the runbook lists
        # newest first: (strategy_id, created_at) leads, so all of them are range scans. The
        # rest of the key makes the index covering for the aggregations: the raw edges of a
        # rollup-backed answer (and every answer on a short window) are index-only scans that
        # never touch the wide heap rows with their payloads. `id` is last so that the
        # "after the watermark" part can be answered from the index too. Checked with EXPLAIN on
        # PostgreSQL 15 (Index Only Scan, Heap Fetches: 0 after VACUUM) and SQLite (USING
        # COVERING INDEX); see bench/bench_scale.py --explain.
        Index("ix_strategy_execution_log_covering", *COVERING_INDEX_COLUMNS),
        # "Find a run" by the request id of a support ticket, across every strategy.
        Index("ix_strategy_execution_log_request_id", "request_id"),
        # The failing runs only (a few percent of the rows): the insights' payload sample and
        # the failed-runs listing read them without walking the ok runs around them.
        Index(
            "ix_strategy_execution_log_failed",
            "strategy_id",
            "created_at",
            postgresql_where=text("status <> 'ok'"),
            sqlite_where=text("status <> 'ok'"),
        ),
        # The rollup job reads new rows by id range: the primary key serves it.
        CheckConstraint("status IN ('ok', 'error', 'timeout', 'limit')", name="ck_sel_status"),
        CheckConstraint("duration_ms >= 0", name="ck_sel_duration_nonnegative"),
        CheckConstraint("nodes >= 0", name="ck_sel_nodes_nonnegative"),
        # Ids only ever grow, even after the newest rows were deleted: the rollup watermark is an
        # id, and a reused id below it would never be counted (SQLite reuses rowids otherwise).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    strategyId: Mapped[str] = mapped_column("strategy_id", String(200))
    strategyVersion: Mapped[str | None] = mapped_column("strategy_version", String(100))
    requestId: Mapped[str | None] = mapped_column("request_id", String(200))
    status: Mapped[str] = mapped_column("status", String(16))
    errorCode: Mapped[str | None] = mapped_column("error_code", String(100))
    errorMessage: Mapped[str | None] = mapped_column("error_message", Text)
    caseName: Mapped[str | None] = mapped_column("case_name", String(200))
    durationMs: Mapped[float] = mapped_column("duration_ms", Double)
    nodes: Mapped[int] = mapped_column("nodes", Integer)
    points: Mapped[float | None] = mapped_column("points", Double)
    inputPayload: Mapped[Any | None] = mapped_column("input_payload", JSONDocument)
    outputPayload: Mapped[Any | None] = mapped_column("output_payload", JSONDocument)
    createdAt: Mapped[datetime] = mapped_column("created_at", UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"StrategyExecutionLog(id={self.id!r}, strategyId={self.strategyId!r}, "
            f"status={self.status!r}, errorCode={self.errorCode!r}, createdAt={self.createdAt!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Every attribute by its camelCase name (payloads as stored)."""
        return {attr.key: getattr(self, attr.key) for attr in self.__mapper__.column_attrs}
