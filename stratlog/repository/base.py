"""``BaseRepository``: create from a pydantic schema, get by id; one session per call."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from stratlog.model.base import Base

ModelT = TypeVar("ModelT", bound=Base)
SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


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

    async def get(self, id: int) -> ModelT | None:
        """The row with this primary key, or ``None``."""
        async with self.session_factory() as session:
            return await session.get(self.model, id)
