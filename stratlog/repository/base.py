"""``BaseRepository``: create from a pydantic schema, get by id; one session per call."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, Self, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.dialect import SessionFactory, consistent_sessions
from stratlog.model.base import Base

ModelT = TypeVar("ModelT", bound=Base)


class BaseRepository(Generic[ModelT]):
    """Generic persistence for one model class; every call opens and closes its own session."""

    def __init__(self, session_factory: SessionFactory, model: type[ModelT]) -> None:
        self.session_factory = session_factory
        self.model = model

    async def create(self, schema: BaseModel) -> ModelT:
        """Persist a new row from a validated pydantic schema and return it (with its id)."""
        row = self.model(**schema.model_dump())
        async with self.session_factory() as session:
            session.add(row)
            await session.commit()
        return row

    @asynccontextmanager
    async def consistent_view(self) -> AsyncIterator[Self]:
        """This repository with every call reading one snapshot of the database (one page).

        Figures shown side by side must add up while rows arrive and old ones are pruned; see
        :func:`stratlog.dialect.consistent_sessions`. Calls may still run concurrently.
        """
        bind = await self._engine()
        if bind is None:  # a factory bound elsewhere: leave it as it is
            yield self
            return
        async with consistent_sessions(bind) as sessions:
            view = copy.copy(self)
            view.session_factory = sessions
            yield view

    async def _engine(self) -> AsyncEngine | None:
        """The engine the session factory is bound to, or ``None`` (bound elsewhere)."""
        async with self.session_factory() as probe:
            bind = probe.bind
        return bind if isinstance(bind, AsyncEngine) else None

    async def get(self, id: int) -> ModelT | None:
        """The row with this primary key, or ``None``."""
        async with self.session_factory() as session:
            return await session.get(self.model, id)
