"""How far behind its primary a read replica (a PostgreSQL streaming standby) is.

The dashboard and the read commands may read a standby (``STRATLOG_READ_DATABASE_URL``). A
standby replays the primary's WAL; while replay trails what it has received, its newest
data is as old as the last transaction it replayed (``pg_last_xact_replay_timestamp()``).
When replay has caught up with what was received, the standby is as current as its stream
(an idle primary commits nothing, so the replay timestamp alone would say it lags). A standby
cut off from its primary cannot know what it missed: that shows as the time since the last
replayed transaction only once new WAL arrives (docs/scaling.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

#: Lag below this is not worth a word on the pages (replay is usually milliseconds behind).
SHOWN_LAG_S = 2.0


@dataclass(frozen=True)
class ReplicaState:
    """A standby's position: when its newest replayed transaction committed on the primary,
    and how many seconds of the primary's work it has received but not yet replayed."""

    asOf: datetime | None
    behindS: float

    @property
    def lagging(self) -> bool:
        return self.behindS >= SHOWN_LAG_S


async def replica_state(engine: AsyncEngine) -> ReplicaState | None:
    """The standby's state, or ``None`` on a primary (and on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp(), "
                    "pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn(), "
                    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
                )
            )
        ).one()
    standby, replayed, caught_up, age = row
    if not standby:
        return None
    behind = 0.0 if caught_up or age is None else max(float(age), 0.0)
    return ReplicaState(replayed, behind)
