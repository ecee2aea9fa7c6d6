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
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

#: Lag below this is not worth a word on the pages (replay is usually milliseconds behind).
SHOWN_LAG_S = 2.0


@dataclass(frozen=True)
class ReplicaState:
    """A standby's position: when its newest replayed transaction committed on the primary,
    how many seconds of the primary's work it has received but not yet replayed, and how many
    bytes of WAL that is. A standby that has replayed no transaction since it started has no
    ``asOf``; it trails by ``pendingBytes`` then, in time unknown."""

    asOf: datetime | None
    behindS: float
    pendingBytes: int = 0

    @property
    def lagging(self) -> bool:
        return self.behindS >= SHOWN_LAG_S or (self.asOf is None and self.pendingBytes > 0)

    def describe(self) -> str:
        """``data as of 2026-12-03 12:03:05 UTC, 4 s behind`` (or the WAL still to replay)."""
        if self.asOf is None:
            return f"{self.pendingBytes:,} bytes of WAL received and not yet replayed"
        at = self.asOf.astimezone(UTC)
        return f"data as of {at:%Y-%m-%d %H:%M:%S} UTC, {self.behindS:,.0f} s behind"


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
                    "extract(epoch FROM now() - pg_last_xact_replay_timestamp()), "
                    "greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), "
                    "pg_last_wal_replay_lsn()), 0)"
                )
            )
        ).one()
    standby, replayed, caught_up, age, pending = row
    if not standby:
        return None
    behind = 0.0 if caught_up or age is None else max(float(age), 0.0)
    return ReplicaState(replayed, behind, 0 if caught_up else int(pending or 0))
