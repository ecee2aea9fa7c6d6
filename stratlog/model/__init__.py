"""Typed SQLAlchemy models."""

from stratlog.model.base import Base
from stratlog.model.rollup import (
    ROLLUP_TABLES,
    BinsRollup,
    CaseRollup,
    CodeRollup,
    RecorderHealth,
    RollupState,
    StatusRollup,
)
from stratlog.model.strategy_execution_log import STATUSES, Status, StrategyExecutionLog

__all__ = [
    "ROLLUP_TABLES",
    "STATUSES",
    "Base",
    "BinsRollup",
    "CaseRollup",
    "CodeRollup",
    "RecorderHealth",
    "RollupState",
    "Status",
    "StatusRollup",
    "StrategyExecutionLog",
]
