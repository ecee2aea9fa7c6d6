"""Pydantic schemas: validated input for ``BaseRepository.create``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from stratlog.model.strategy_execution_log import Status


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class StrategyExecutionLogCreate(BaseModel):
    """A new audit row, validated: the status vocabulary, non-negative costs, aware timestamps."""

    model_config = ConfigDict(extra="forbid")

    strategyId: str = Field(min_length=1, max_length=200)
    strategyVersion: str | None = Field(default=None, max_length=100)
    requestId: str | None = Field(default=None, max_length=200)
    status: Status
    errorCode: str | None = Field(default=None, max_length=100)
    errorMessage: str | None = None
    caseName: str | None = Field(default=None, max_length=200)
    durationMs: float = Field(ge=0, allow_inf_nan=False)
    nodes: int = Field(ge=0, le=2**31 - 1)
    points: float | None = Field(default=None, allow_inf_nan=False)
    inputPayload: Any | None = None
    outputPayload: Any | None = None
    createdAt: AwareDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _ok_has_no_error(self) -> StrategyExecutionLogCreate:
        if self.status == "ok" and self.errorCode is not None:
            raise ValueError("an 'ok' row carries no errorCode")
        return self
