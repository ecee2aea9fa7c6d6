"""Repositories: SQL only, one statement per method."""

from stratlog.repository.base import BaseRepository
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

__all__ = ["BaseRepository", "StrategyExecutionLogRepository"]
