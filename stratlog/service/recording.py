"""Best-effort recording: scoring never blocks on, nor fails because of, the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

log = logging.getLogger("stratlog.recording")


@dataclass(frozen=True)
class RecorderStats:
    """Counters of one recorder: every attempt ends up written or failed."""

    attempted: int = 0
    written: int = 0
    failed: int = 0
    lastError: str | None = None
    lastFailureAt: datetime | None = None


class Recorder:
    """Writes audit rows through the repository; ``record`` never raises into its caller."""

    def __init__(self, repository: StrategyExecutionLogRepository, *, timeout_s: float = 5.0):
        self.repository = repository
        self.timeout_s = timeout_s
        self._stats = RecorderStats()
        self._lock = threading.Lock()

    @property
    def stats(self) -> RecorderStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return self._stats

    async def record(self, row: StrategyExecutionLog) -> bool:
        """Persist ``row``; on any failure log once, count it and return ``False``."""
        self._bump(attempted=1)
        try:
            await asyncio.wait_for(self.repository.insert_row(row), self.timeout_s)
        except Exception as exc:  # best-effort by contract: nothing may reach the scoring caller
            self._failed(row, exc)
            return False
        self._bump(written=1)
        return True

    def _bump(self, attempted: int = 0, written: int = 0) -> None:
        with self._lock:
            s = self._stats
            self._stats = replace(s, attempted=s.attempted + attempted, written=s.written + written)

    def _failed(self, row: object, exc: BaseException) -> None:
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        with self._lock:
            self._stats = replace(
                self._stats,
                failed=self._stats.failed + 1,
                lastError=cause,
                lastFailureAt=datetime.now(UTC),
            )
        with contextlib.suppress(Exception):  # a broken log handler must not break scoring
            log.warning(
                "audit row not recorded (strategyId=%r requestId=%r): %s",
                getattr(row, "strategyId", None),
                getattr(row, "requestId", None),
                cause,
            )
