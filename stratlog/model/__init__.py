"""Typed SQLAlchemy models."""

from stratlog.model.base import Base
from stratlog.model.rollup import (
    RecorderHealth,
    RollupState,
    StrategyExecutionBin,
    StrategyExecutionRollup,
)
from stratlog.model.strategy_execution_log import STATUSES, Status, StrategyExecutionLog

__all__ = [
    "STATUSES",
    "Base",
    "RecorderHealth",
    "RollupState",
    "Status",
    "StrategyExecutionBin",
    "StrategyExecutionLog",
    "StrategyExecutionRollup",
]
