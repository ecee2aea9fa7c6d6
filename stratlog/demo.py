"""Realistic, deterministic demo data: five strategies, each with a story an operator can find.

Stories (times relative to ``end``, the last moment of the data, default: the current hour):

- ``credit-limit``: healthy. Over 99 % ok, a long tail of rare, skewed error codes.
- ``fraud-screen``: an error spike. During the hour starting ``SPIKE_HOURS_BEFORE_END`` hours
  before ``end`` (floored to the hour), about 40 % of runs fail with ``UPSTREAM_UNAVAILABLE``.
- ``kyc-depth``: hits the interpreter's node budget. About 7 % of runs end ``limit``
  (``NODE_LIMIT_EXCEEDED``) with ``nodes`` at the budget of 5,000.
- ``pricing-tier``: a slow deploy. Version ``1.4.0`` until the middle of the range (floored to
  the hour), then ``1.5.0`` whose runs take twice as long.
- ``promo-eligibility``: a small, quiet strategy with occasional timeouts.

The same ``seed``, ``rows``, ``strategies``, ``days`` and ``end`` always give the same rows.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import math
import multiprocessing
import multiprocessing.context
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.repository.strategy_execution_log_repository import (
    PreparedBulk,
    StrategyExecutionLogRepository,
    prepare_bulk,
)

SPIKE_HOURS_BEFORE_END = 6
SPIKE_ERROR_CODE = "UPSTREAM_UNAVAILABLE"
NODE_BUDGET = 5000
BATCH_SIZE = 5000
PREFETCH = 4
WORKERS = 2

Row = dict[str, Any]


@dataclass(frozen=True)
class Story:
    """One demo strategy: its id, share of the rows and the function that builds one row."""

    strategyId: str
    weight: float
    build: Callable[[random.Random, datetime, DemoClock], Row]


@dataclass(frozen=True)
class DemoClock:
    """The moments the stories hinge on."""

    start: datetime
    end: datetime
    spike_start: datetime
    version_change: datetime


def floor_hour(value: datetime) -> datetime:
    """The start of the hour holding ``value``."""
    return value.replace(minute=0, second=0, microsecond=0)


def make_clock(end: datetime, days: float) -> DemoClock:
    """Place the spike and the version change inside ``[end - days, end)``."""
    start = end - timedelta(days=days)
    spike = max(floor_hour(end) - timedelta(hours=SPIKE_HOURS_BEFORE_END), floor_hour(start))
    change = max(floor_hour(start + (end - start) / 2), start)
    return DemoClock(start, end, spike, change)


@functools.cache
def _cumulative(weighted: tuple[tuple[Any, float], ...]) -> tuple[tuple[Any, ...], list[float]]:
    values, weights = zip(*weighted, strict=True)
    return values, list(itertools.accumulate(weights))


def _pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...]) -> Any:
    values, cumulative = _cumulative(weighted)
    return values[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


ERROR_MESSAGES = {
    "MISSING_FACT": "fact 'applicant.income' is not defined",
    "TYPE_MISMATCH": "cannot compare str with number in rule 'income_band'",
    "DIV_BY_ZERO": "division by zero in expression 'debt / income'",
    "UNKNOWN_FUNCTION": "unknown function 'score_v3' called from case 'legacy_bonus'",
    SPIKE_ERROR_CODE: "lookup service 'bureau-api' unavailable: connection refused",
    "TIMEOUT": "evaluation exceeded its 250 ms budget",
    "NODE_LIMIT_EXCEEDED": f"node budget of {NODE_BUDGET} exhausted",
}
COUNTRIES = ("DE", "FR", "NL", "PL", "ES", "IT", "SE", "GB")
CHANNELS = ("web", "app", "branch")
BACKGROUND_ERRORS = (
    ("MISSING_FACT", 0.6),
    ("TYPE_MISMATCH", 0.25),
    ("DIV_BY_ZERO", 0.1),
    ("UNKNOWN_FUNCTION", 0.05),
)


def _facts(rng: random.Random) -> dict[str, Any]:
    r = rng.random
    return {
        "applicant": {
            "age": 18 + int(r() * 73),
            "country": COUNTRIES[int(r() * len(COUNTRIES))],
            "income": round(_lognormal(rng, 36_000, 0.5), 2),
        },
        "amount": round(_lognormal(rng, 1_100, 1.0), 2),
        "channel": CHANNELS[int(r() * len(CHANNELS))],
    }


def _row(
    rng: random.Random,
    strategy: str,
    version: str,
    status: str,
    error: str | None,
    case: str | None,
    duration: float,
    nodes: int,
    points: float | None,
) -> Row:
    return {
        "strategyId": strategy,
        "strategyVersion": version,
        "requestId": f"req-{rng.getrandbits(64):016x}",
        "status": status,
        "errorCode": error,
        "errorMessage": ERROR_MESSAGES.get(error) if error else None,
        "caseName": case,
        "durationMs": round(duration, 3),
        "nodes": nodes,
        "points": points,
        "inputPayload": _facts(rng),
        "outputPayload": {"case": case, "points": points, "status": status},
    }


def _failure(rng: random.Random, rate: float) -> str | None:
    return _pick(rng, BACKGROUND_ERRORS) if rng.random() < rate else None


CREDIT_CASES = (
    ("prime_customer", 0.34),
    ("standard_income", 0.28),
    ("thin_file", 0.14),
    ("high_utilisation", 0.09),
    ("young_applicant", 0.03),
    (None, 0.12),
)
CREDIT_POINTS = {
    "prime_customer": 80.0,
    "standard_income": 55.0,
    "thin_file": 30.0,
    "high_utilisation": 20.0,
    "young_applicant": 40.0,
    None: 10.0,
}


def _credit_limit(rng: random.Random, at: datetime, clock: DemoClock) -> Row:
    duration = _lognormal(rng, 4.0, 0.45)
    nodes = int(40 + duration * 18 + rng.randint(0, 30))
    if rng.random() < 0.001:
        return _row(rng, "credit-limit", "3.2.1", "timeout", "TIMEOUT", None, 250.0, nodes, None)
    error = _failure(rng, 0.004)
    if error:
        return _row(rng, "credit-limit", "3.2.1", "error", error, None, duration, nodes, None)
    case = _pick(rng, CREDIT_CASES)
    points = CREDIT_POINTS[case] + round(rng.gauss(0, 4), 1)
    return _row(rng, "credit-limit", "3.2.1", "ok", None, case, duration, nodes, points)


def _fraud_screen(rng: random.Random, at: datetime, clock: DemoClock) -> Row:
    duration = _lognormal(rng, 7.0, 0.5)
    nodes = int(60 + duration * 15)
    in_spike = clock.spike_start <= at < clock.spike_start + timedelta(hours=1)
    if in_spike and rng.random() < 0.4:
        wait = duration + rng.uniform(20, 60)
        return _row(
            rng, "fraud-screen", "7.0.3", "error", SPIKE_ERROR_CODE, None, wait, nodes, None
        )
    error = _failure(rng, 0.01)
    if error:
        return _row(rng, "fraud-screen", "7.0.3", "error", error, None, duration, nodes, None)
    case = _pick(rng, (("velocity_ok", 0.55), ("device_mismatch", 0.2), ("geo_risk", 0.1)))
    case = case if rng.random() > 0.15 else None
    points = {"velocity_ok": 0.0, "device_mismatch": -25.0, "geo_risk": -40.0, None: -5.0}[case]
    return _row(rng, "fraud-screen", "7.0.3", "ok", None, case, duration, nodes, points)


def _kyc_depth(rng: random.Random, at: datetime, clock: DemoClock) -> Row:
    nodes = int(_lognormal(rng, 2100, 0.6))
    duration = nodes * rng.uniform(0.004, 0.006)
    if nodes >= NODE_BUDGET:
        return _row(
            rng,
            "kyc-depth",
            "2.0.0",
            "limit",
            "NODE_LIMIT_EXCEEDED",
            None,
            NODE_BUDGET * 0.005,
            NODE_BUDGET,
            None,
        )
    error = _failure(rng, 0.006)
    if error:
        return _row(rng, "kyc-depth", "2.0.0", "error", error, None, duration, nodes, None)
    case = _pick(rng, (("sanctions_clear", 0.5), ("pep_review", 0.15), ("doc_expired", 0.1)))
    case = case if rng.random() > 0.25 else None
    points = {"sanctions_clear": 100.0, "pep_review": 35.0, "doc_expired": 5.0, None: 0.0}[case]
    return _row(rng, "kyc-depth", "2.0.0", "ok", None, case, duration, nodes, points)


def _pricing_tier(rng: random.Random, at: datetime, clock: DemoClock) -> Row:
    slow = at >= clock.version_change
    version = "1.5.0" if slow else "1.4.0"
    duration = _lognormal(rng, 12.0, 0.35) * (2.0 if slow else 1.0)
    nodes = int(150 + rng.randint(0, 80))
    error = _failure(rng, 0.003)
    if error:
        return _row(rng, "pricing-tier", version, "error", error, None, duration, nodes, None)
    case = _pick(rng, (("gold", 0.15), ("silver", 0.35), ("bronze", 0.4), (None, 0.1)))
    points = {"gold": 300.0, "silver": 150.0, "bronze": 60.0, None: 25.0}[case]
    return _row(rng, "pricing-tier", version, "ok", None, case, duration, nodes, points)


def _promo_eligibility(rng: random.Random, at: datetime, clock: DemoClock) -> Row:
    duration = _lognormal(rng, 2.5, 0.6)
    nodes = int(20 + rng.randint(0, 25))
    if rng.random() < 0.02:
        return _row(
            rng, "promo-eligibility", "0.9.2", "timeout", "TIMEOUT", None, 100.0, nodes, None
        )
    case = _pick(rng, (("newsletter_bonus", 0.3), ("first_purchase", 0.25), (None, 0.45)))
    points = {"newsletter_bonus": 5.0, "first_purchase": 15.0, None: 0.0}[case]
    return _row(rng, "promo-eligibility", "0.9.2", "ok", None, case, duration, nodes, points)


STORIES = (
    Story("credit-limit", 0.35, _credit_limit),
    Story("fraud-screen", 0.25, _fraud_screen),
    Story("kyc-depth", 0.15, _kyc_depth),
    Story("pricing-tier", 0.15, _pricing_tier),
    Story("promo-eligibility", 0.10, _promo_eligibility),
)


def _extra_story(index: int) -> Story:
    strategy = f"strategy-{index:02d}"

    def build(rng: random.Random, at: datetime, clock: DemoClock) -> Row:
        row = _credit_limit(rng, at, clock)
        row["strategyId"] = strategy
        return row

    return Story(strategy, 0.05, build)


def stories(count: int) -> tuple[Story, ...]:
    """The first ``count`` stories; past five, extra healthy strategies ``strategy-06``..."""
    if count < 1:
        raise ValueError(f"strategies must be at least 1, got {count}")
    extra = tuple(_extra_story(i) for i in range(len(STORIES) + 1, count + 1))
    return (STORIES + extra)[:count]


def _intensity(at: datetime) -> float:
    """Relative traffic at a moment: busier in the (UTC) daytime than at night."""
    hour = at.hour + at.minute / 60
    return 0.55 + 0.45 * math.sin(math.pi * (hour - 4) / 24) ** 2


@dataclass(frozen=True)
class DemoPlan:
    """Everything that determines the demo rows; batch ``i`` depends on nothing else."""

    rows: int
    strategies: int
    days: float
    seed: int
    end: datetime

    @property
    def batches(self) -> int:
        """How many batches of ``BATCH_SIZE`` (the last may be shorter)."""
        return -(-self.rows // BATCH_SIZE)

    def batch_rows(self, index: int) -> int:
        """Rows in batch ``index``."""
        return min(BATCH_SIZE, self.rows - index * BATCH_SIZE)


def _edges(plan: DemoPlan, clock: DemoClock) -> list[datetime]:
    """Batch boundaries: equal shares of the cumulative traffic, so batches stay time-ordered."""
    step = timedelta(minutes=10)
    grid = [clock.start]
    while grid[-1] < clock.end:
        grid.append(min(grid[-1] + step, clock.end))
    weights = [_intensity(a) * (b - a).total_seconds() for a, b in itertools.pairwise(grid)]
    cumulative = [0.0, *itertools.accumulate(weights)]
    edges = []
    for i in range(plan.batches + 1):
        target = cumulative[-1] * min(i * BATCH_SIZE, plan.rows) / max(plan.rows, 1)
        k = min(max(bisect.bisect_left(cumulative, target) - 1, 0), len(weights) - 1)
        share = (target - cumulative[k]) / weights[k] if weights[k] else 0.0
        edges.append(grid[k] + (grid[k + 1] - grid[k]) * min(max(share, 0.0), 1.0))
    return edges


def _times(rng: random.Random, left: datetime, right: datetime, count: int) -> list[datetime]:
    """``count`` sorted moments in ``[left, right)``, drawn with the daily traffic pattern."""
    span = (right - left).total_seconds()
    times: list[datetime] = []
    while len(times) < count:
        at = left + timedelta(seconds=rng.random() * span)
        if at < right and rng.random() < _intensity(at):
            times.append(at)
    return sorted(times)


def generate_batch(plan: DemoPlan, index: int) -> list[Row]:
    """Batch ``index`` of the plan: deterministic, independent of the other batches."""
    clock = make_clock(plan.end, plan.days)
    left, right = _edges(plan, clock)[index : index + 2]
    rng = random.Random(f"stratlog-demo:{plan.seed}:{index}")
    chosen = stories(plan.strategies)
    count = plan.batch_rows(index)
    picks = rng.choices(chosen, [st.weight for st in chosen], k=count)
    batch = []
    for story, at in zip(picks, _times(rng, left, right, count), strict=True):
        row = story.build(rng, at, clock)
        row["createdAt"] = at
        batch.append(row)
    return batch


def make_plan(
    rows: int, strategies: int = 5, days: float = 14, seed: int = 42, end: datetime | None = None
) -> DemoPlan:
    """Validate the demo parameters; ``end`` defaults to the start of the current UTC hour."""
    if rows < 0:
        raise ValueError(f"rows must not be negative, got {rows}")
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    stories(strategies)  # validates the count
    return DemoPlan(rows, strategies, days, seed, end or floor_hour(datetime.now(UTC)))


def generate(
    rows: int, strategies: int = 5, days: float = 14, seed: int = 42, end: datetime | None = None
) -> Iterator[list[Row]]:
    """Yield the demo rows in time order, in batches of ``BATCH_SIZE`` (in this process)."""
    plan = make_plan(rows, strategies, days, seed, end)
    for index in range(plan.batches):
        yield generate_batch(plan, index)


@dataclass(frozen=True)
class DemoResult:
    """What ``write_demo`` did."""

    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Throughput of generation plus insertion."""
        return self.rows / self.seconds if self.seconds else float("inf")


async def write_demo(
    repository: StrategyExecutionLogRepository,
    rows: int,
    strategies: int = 5,
    days: float = 14,
    seed: int = 42,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    database_url: str | None = None,
) -> DemoResult:
    """Generate and insert the demo rows; ``progress`` gets each written batch's size.

    Two worker processes generate batches while this one inserts them,
    a few batches ahead; the rows are the same as :func:`generate` yields. Given the
    ``database_url``, the worker also runs the column types' bind processors
    (:func:`~stratlog.repository.strategy_execution_log_repository.prepare_bulk`), so this
    process only hands finished tuples to the driver.
    """
    plan = make_plan(rows, strategies, days, seed, end)
    started = time.perf_counter()
    written = 0
    loop = asyncio.get_running_loop()
    work = functools.partial(_prepared_batch, database_url) if database_url else generate_batch
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=_mp_context()) as pool:
        ahead = [
            loop.run_in_executor(pool, work, plan, i) for i in range(min(PREFETCH, plan.batches))
        ]
        for index in range(plan.batches):
            batch = await ahead.pop(0)
            if index + PREFETCH < plan.batches:
                ahead.append(loop.run_in_executor(pool, work, plan, index + PREFETCH))
            count = await (
                repository.insert_prepared(batch)
                if isinstance(batch, tuple)
                else repository.insert_many(cast(list[Row], batch))
            )
            written += count
            if progress is not None:
                progress(count)
    return DemoResult(written, time.perf_counter() - started)


def _prepared_batch(database_url: str, plan: DemoPlan, index: int) -> PreparedBulk:
    """Batch ``index``, bind-processed for the database's dialect (runs in the worker)."""
    dialect = _dialect(database_url)
    return prepare_bulk(StrategyExecutionLog, dialect, generate_batch(plan, index))


@functools.cache
def _dialect(database_url: str) -> Any:
    from stratlog.db import make_engine

    return make_engine(database_url).dialect  # no connection is opened


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver/spawn avoid forking a process that holds an event loop and database threads.
    return multiprocessing.get_context("forkserver")
