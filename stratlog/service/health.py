"""Recorder health: each recorder process publishes its counters to one table row, so the
dashboard and ``stratlog health`` can show them from any other process.

``submitted == written + dropped + failed + pending`` for every row. Publishing is best-effort
like recording itself: when the database is down the counters wait in memory and the next
publish after the outage carries them.

The Health page also shows how far the rollup job has got (:func:`read_rollup`: the watermark
row and the newest audit id, both single-row index lookups, in one statement);
:func:`fetch_health` reads both concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select

from stratlog.dialect import SessionFactory
from stratlog.model.rollup import RecorderHealth, RollupState
from stratlog.rollups.plan import ROLLUP_NAME, newest_id
from stratlog.service.buffered import BufferedRecorder
from stratlog.service.recording import Recorder

log = logging.getLogger("stratlog.health")


@dataclass(frozen=True)
class HealthRow:
    """One recorder's published counters."""

    name: str
    kind: str
    submitted: int
    written: int
    dropped: int
    failed: int
    pending: int
    lastError: str | None
    updatedAt: datetime


def snapshot(name: str, recorder: Recorder | BufferedRecorder) -> HealthRow:
    """The recorder's counters now, in the published shape."""
    now = datetime.now(UTC)
    if isinstance(recorder, BufferedRecorder):
        b = recorder.stats
        return HealthRow(
            name, "buffered", b.submitted, b.written, b.dropped, b.failed, b.pending,
            b.lastError, now,
        )  # fmt: skip
    r = recorder.stats
    pending = r.attempted - r.written - r.failed
    return HealthRow(
        name, "awaited", r.attempted, r.written, 0, r.failed, pending, r.lastError, now
    )


def default_name() -> str:
    """``host:pid``, unique per recorder process."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def publish(session_factory: SessionFactory, row: HealthRow) -> None:
    """Replace this recorder's row (delete + insert: the same on every backend)."""
    async with session_factory() as session:
        await session.execute(delete(RecorderHealth).where(RecorderHealth.name == row.name))
        await session.execute(insert(RecorderHealth).values(**row.__dict__))
        await session.commit()


async def read_health(session_factory: SessionFactory) -> list[HealthRow]:
    """Every published recorder, most recently updated first."""
    stmt = select(RecorderHealth).order_by(RecorderHealth.updatedAt.desc(), RecorderHealth.name)
    async with session_factory() as session:
        rows = (await session.scalars(stmt)).all()
    return [
        HealthRow(r.name, r.kind, r.submitted, r.written, r.dropped, r.failed, r.pending,
                  r.lastError, r.updatedAt)
        for r in rows
    ]  # fmt: skip


class HealthPublisher:
    """Publishes a recorder's counters every ``interval_s`` seconds and once more on stop."""

    def __init__(
        self,
        session_factory: SessionFactory,
        recorder: Recorder | BufferedRecorder,
        *,
        name: str | None = None,
        interval_s: float = 10.0,
    ) -> None:
        self.session_factory = session_factory
        self.recorder = recorder
        self.name = name or default_name()
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        """Start publishing on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop and publish the final counters (best-effort)."""
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.publish_now()

    async def publish_now(self) -> bool:
        """Publish once; ``False`` (and a debug log) when the database is unreachable."""
        try:
            await publish(self.session_factory, snapshot(self.name, self.recorder))
        except Exception as exc:  # best-effort: the counters stay in memory
            log.debug("health not published: %s: %s", type(exc).__name__, exc)
            return False
        return True

    async def _loop(self) -> None:
        while not self._stop.is_set():
            await self.publish_now()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)


@dataclass(frozen=True)
class RollupStatus:
    """The rollup watermark: rows with ``id <= watermark`` are folded into the rollups."""

    watermark: int
    newestId: int
    updatedAt: datetime | None

    @property
    def behind(self) -> int:
        """Audit ids above the watermark (an upper bound on rows not yet rolled up)."""
        return max(self.newestId - self.watermark, 0)

    @property
    def ran(self) -> bool:
        """True once the rollup job has run on this database."""
        return self.updatedAt is not None or self.watermark > 0


@dataclass(frozen=True)
class Health:
    """Everything the Health page shows."""

    recorders: list[HealthRow]
    rollup: RollupStatus


async def read_rollup(session_factory: SessionFactory) -> RollupStatus:
    """Watermark, its last move and the newest audit id, in one statement."""
    named = RollupState.name == ROLLUP_NAME
    stmt = select(
        newest_id().label("newest"),
        select(RollupState.watermark).where(named).scalar_subquery().label("watermark"),
        select(RollupState.updatedAt).where(named).scalar_subquery().label("updated"),
    )
    async with session_factory() as session:
        row = (await session.execute(stmt)).one()
    return RollupStatus(int(row.watermark or 0), int(row.newest or 0), row.updated)


async def fetch_health(session_factory: SessionFactory) -> Health:
    """Recorder counters and the rollup status, fetched concurrently."""
    recorders, rollup = await asyncio.gather(
        read_health(session_factory), read_rollup(session_factory)
    )
    return Health(recorders=recorders, rollup=rollup)
