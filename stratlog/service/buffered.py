"""A buffered recorder: ``submit(row)`` returns at once; a background task writes batches.

For scoring paths that cannot afford even an awaited insert. Rows wait in a bounded in-memory
queue; when it is full, new rows are dropped and counted, never waited for. A writer task takes
batches (multi-row inserts), retries a failed batch a few times with backoff, then gives it up
and counts its rows as failed. ``close()`` flushes what it can. At any moment
``submitted == written + dropped + failed + pending``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

log = logging.getLogger("stratlog.buffered")

Row = StrategyExecutionLog | Mapping[str, Any]


@dataclass(frozen=True)
class BufferedStats:
    """Where every submitted row went."""

    submitted: int
    written: int
    dropped: int
    failed: int
    pending: int
    lastError: str | None


class BufferedRecorder:
    """Bounded queue plus one writer task; see the module docstring."""

    def __init__(
        self,
        repository: StrategyExecutionLogRepository,
        *,
        max_queue: int = 50_000,
        batch_size: int = 2_000,
        flush_interval_s: float = 0.05,
        write_timeout_s: float = 10.0,
        retries: int = 3,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        self.repository = repository
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.write_timeout_s = write_timeout_s
        self.retries = retries
        self._queue: collections.deque[Row] = collections.deque()
        self._lock = threading.Lock()
        self._counts = {"submitted": 0, "written": 0, "dropped": 0, "failed": 0, "inflight": 0}
        self._last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_outage = False

    def start(self) -> None:
        """Start the writer task on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._writer())

    def submit(self, row: Row) -> bool:
        """Queue one row (model instance or camelCase dict); ``False`` when it was dropped."""
        with self._lock:
            self._counts["submitted"] += 1
            if self._closing or len(self._queue) >= self.max_queue:
                self._counts["dropped"] += 1
                return False
            self._queue.append(row)
            return True

    @property
    def stats(self) -> BufferedStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            c = self._counts
            pending = len(self._queue) + c["inflight"]
            return BufferedStats(
                c["submitted"], c["written"], c["dropped"], c["failed"], pending, self._last_error
            )

    async def close(self, timeout_s: float = 10.0) -> BufferedStats:
        """Stop taking rows, write what is queued (up to ``timeout_s``), stop the writer."""
        with self._lock:
            self._closing = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        with self._lock:  # whatever could not be written in time is lost: count it
            self._counts["failed"] += len(self._queue) + self._counts["inflight"]
            self._counts["inflight"] = 0
            self._queue.clear()
        return self.stats

    def _take(self) -> list[Row]:
        with self._lock:
            count = min(self.batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            self._counts["inflight"] = count
            return batch

    async def _writer(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                if self._closing:
                    return
                await asyncio.sleep(self.flush_interval_s)
                continue
            written = await self._write(batch)
            with self._lock:
                self._counts["inflight"] = 0
                self._counts["written" if written else "failed"] += len(batch)

    async def _write(self, batch: list[Row]) -> bool:
        rows = [r.to_dict() if isinstance(r, StrategyExecutionLog) else r for r in batch]
        for attempt in range(self.retries + 1):
            try:
                await asyncio.wait_for(self.repository.insert_many(rows), self.write_timeout_s)
                if self._in_outage:
                    log.warning("audit writes recovered: %s", self._last_error)
                    self._in_outage = False
                return True
            except Exception as exc:  # counted and logged; the scoring path never sees it
                self._note_failure(exc, len(rows), attempt)
                if attempt < self.retries and not self._closing:
                    await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        return False

    def _note_failure(self, exc: BaseException, rows: int, attempt: int) -> None:
        """Log the first failure of an outage once; later ones only move the counters."""
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        self._last_error = cause
        if not self._in_outage:
            self._in_outage = True
            log.warning("audit batch of %d rows not written (attempt %d): %s", rows, attempt, cause)
