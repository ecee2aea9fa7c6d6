"""The observer: turns one interpreter result into a ``StrategyExecutionLog`` row and records it.

The interpreter's output is validated against :class:`InterpreterResult`; the outcome maps to a
status (node-limit breach > timeout > error > ok). Malformed input never raises into the
scoring path: when it still names a strategy it is stored as an ``error`` row with the code
``MALFORMED_RESULT`` and the reason as its message (so operators see it on the dashboard);
otherwise it is logged and dropped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from stratlog.model.strategy_execution_log import Status, StrategyExecutionLog
from stratlog.schemas import utcnow
from stratlog.service.recording import Recorder

log = logging.getLogger("stratlog.observer")

TIMEOUT_CODE = "TIMEOUT"
NODE_LIMIT_CODE = "NODE_LIMIT_EXCEEDED"
MALFORMED_CODE = "MALFORMED_RESULT"


class InterpreterError(BaseModel):
    """A failure the interpreter raised while evaluating the strategy."""

    code: str = Field(min_length=1, max_length=100)
    message: str | None = None


class InterpreterResult(BaseModel):
    """What the interpreter hands the observer after one evaluation."""

    model_config = ConfigDict(extra="ignore")

    strategyId: str = Field(min_length=1, max_length=200)
    strategyVersion: str | None = Field(default=None, max_length=100)
    requestId: str | None = Field(default=None, max_length=200)
    durationMs: float = Field(ge=0, allow_inf_nan=False)
    nodes: int = Field(ge=0, le=2**31 - 1)
    caseName: str | None = Field(default=None, max_length=200)
    points: float | None = Field(default=None, allow_inf_nan=False)
    facts: Any = None
    output: Any = None
    error: InterpreterError | None = None
    timedOut: bool = False
    nodeLimitExceeded: bool = False
    finishedAt: AwareDatetime = Field(default_factory=utcnow)


def outcome_status(result: InterpreterResult) -> Status:
    """The status of an evaluation: limit, then timeout, then error, else ok."""
    if result.nodeLimitExceeded:
        return "limit"
    if result.timedOut:
        return "timeout"
    if result.error is not None:
        return "error"
    return "ok"


def _error_code(result: InterpreterResult, status: Status) -> str | None:
    if status == "ok":
        return None
    if result.error is not None:
        return result.error.code
    return NODE_LIMIT_CODE if status == "limit" else TIMEOUT_CODE


def to_row(result: InterpreterResult) -> StrategyExecutionLog:
    """Build the audit row for one interpreter result (points only on ``ok`` runs)."""
    status = outcome_status(result)
    return StrategyExecutionLog(
        strategyId=result.strategyId,
        strategyVersion=result.strategyVersion,
        requestId=result.requestId,
        status=status,
        errorCode=_error_code(result, status),
        errorMessage=result.error.message if result.error is not None else None,
        caseName=result.caseName,
        durationMs=result.durationMs,
        nodes=result.nodes,
        points=result.points if status == "ok" else None,
        inputPayload=result.facts,
        outputPayload=result.output,
        createdAt=result.finishedAt,
    )


class Observer:
    """Validates interpreter output, builds the row and hands it to the best-effort recorder."""

    def __init__(self, recorder: Recorder, *, store_malformed: bool = True) -> None:
        self.recorder = recorder
        self.store_malformed = store_malformed
        self._dropped = 0
        self._malformed = 0
        self._lock = threading.Lock()

    @property
    def dropped(self) -> int:
        """How many malformed results were dropped (no strategy to file them under)."""
        return self._dropped

    @property
    def malformed(self) -> int:
        """How many malformed results were stored as ``MALFORMED_RESULT`` rows."""
        return self._malformed

    async def observe(
        self, result: InterpreterResult | Mapping[str, Any]
    ) -> StrategyExecutionLog | None:
        """Record one result; return the row, or ``None`` when the input was dropped."""
        row: StrategyExecutionLog | None
        try:
            parsed = (
                result
                if isinstance(result, InterpreterResult)
                else InterpreterResult.model_validate(result)
            )
            row = to_row(parsed)
        except Exception as exc:  # malformed input: never raise into the scoring path
            row = self._malformed_row(result, exc)
        if row is not None:
            await self.recorder.record(row)
        return row

    def _malformed_row(self, result: object, exc: Exception) -> StrategyExecutionLog | None:
        reason = _reason(exc)
        strategy = result.get("strategyId") if isinstance(result, Mapping) else None
        request = result.get("requestId") if isinstance(result, Mapping) else None
        usable = isinstance(strategy, str) and 0 < len(strategy) <= 200
        with contextlib.suppress(Exception):
            log.warning(
                "malformed interpreter result %s (strategyId=%r requestId=%r): %s",
                "stored as MALFORMED_RESULT" if usable and self.store_malformed else "dropped",
                strategy,
                request,
                reason,
            )
        with self._lock:
            if not (usable and self.store_malformed):
                self._dropped += 1
                return None
            self._malformed += 1
        assert isinstance(result, Mapping) and isinstance(strategy, str)
        return StrategyExecutionLog(
            strategyId=strategy,
            requestId=request if isinstance(request, str) else None,
            status="error",
            errorCode=MALFORMED_CODE,
            errorMessage=reason,
            caseName=None,
            durationMs=_non_negative(result.get("durationMs"), float),
            nodes=int(_non_negative(result.get("nodes"), int)),
            points=None,
            inputPayload=None,
            outputPayload={"malformed": repr(dict(result))[:4000]},
            createdAt=utcnow(),
        )


def _non_negative(value: object, kind: type) -> float:
    """The value as a finite non-negative number, or 0."""
    try:
        number = float(kind(value))
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) and 0 <= number < 2**31 else 0.0


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        return f"{exc.error_count()} problem(s), first: {where}: {first['msg']}"
    return f"{type(exc).__name__}: {exc}"[:500]
