"""The Health page's data: recorder counters and how far the rollup job has got; no Streamlit.

Recorder rows come from :func:`stratlog.service.health.read_health`. The rollup status is one
statement over the watermark row and the newest audit id (both single-row index lookups).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from stratlog.model.rollup import RollupState
from stratlog.repository.base import SessionFactory
from stratlog.repository.sources import ROLLUP_NAME, newest_id
from stratlog.service.health import HealthRow, read_health


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
