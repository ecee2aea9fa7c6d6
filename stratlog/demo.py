"""Realistic, deterministic demo data: five strategies, each with a story an operator can find.

Stories (times relative to ``end``, the last moment of the data, default: the current hour):

- ``credit-limit``: healthy. Over 99 % ok, a long tail of rare, skewed error codes. From
  ``DRIFT_HOURS_BEFORE_END`` hours before ``end`` its ``young_applicant`` rule stops matching:
  those runs fall through to no rule (a dormant case, a larger fallthrough share).
- ``fraud-screen``: an error spike. ``UPSTREAM_UNAVAILABLE`` fails about 0.2 % of runs all along;
  during the hour starting ``SPIKE_HOURS_BEFORE_END`` hours before ``end`` (floored to the hour),
  about 40 %.
- ``kyc-depth``: hits the interpreter's node budget. Runs end ``limit``
  (``NODE_LIMIT_EXCEEDED``) with ``nodes`` at the budget of 5,000: about 10 % of them, most of
  all for applicants from ``GB`` (twice the nodes: the failing runs' payloads say so). From
  ``DRIFT_HOURS_BEFORE_END`` hours before ``end`` every run takes 40 % more nodes (a creep
  towards the budget).
- ``pricing-tier``: a slow deploy. Version ``1.4.0`` until ``VERSION_HOURS_BEFORE_END`` hours
  before ``end``, then ``1.5.0``: runs take twice as long, a new error code, ``gold`` never
  matches (its runs get ``silver``'s points).
- ``promo-eligibility``: a small, quiet, steady strategy with occasional timeouts: nothing about
  it changes (the insights find nothing).

The same ``seed``, ``rows``, ``strategies``, ``days`` and ``end`` always give the same rows.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import multiprocessing
import multiprocessing.context
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from stratlog.model.strategy_execution_log import StrategyExecutionLog
from stratlog.repository.bulk import PreparedBulk, prepare_bulk_columns
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

SPIKE_HOURS_BEFORE_END = 6
#: credit-limit's dormant rule and kyc-depth's node creep start this many hours before the end:
#: before any "last 24 hours" window that ends at or after ``end``.
DRIFT_HOURS_BEFORE_END = 26
DORMANT_CASE = "young_applicant"
#: kyc-depth: GB applicants take this many times the nodes; after the drift, everybody 1.4 x.
HEAVY_COUNTRY = "GB"
HEAVY_NODES = 2.0
CREEP_NODES = 1.4
#: pricing-tier deploys 1.5.0 this many hours before the end: inside the last 24 h, so the
#: Overview compared with the previous day shows what the deploy changed.
VERSION_HOURS_BEFORE_END = 18
#: The error code 1.5.0 brings, and the case it stops firing (its runs fall to "silver").
NEW_VERSION_ERROR_CODE = "TIER_TABLE_STALE"
DROPPED_CASE = "gold"
SPIKE_ERROR_CODE = "UPSTREAM_UNAVAILABLE"
NODE_BUDGET = 5000
BATCH_SIZE = 5000
PREFETCH = 4
WORKERS = 2

log = logging.getLogger(__name__)

Row = dict[str, Any]
Columns = dict[str, Any]
"""One batch column-wise: camelCase attribute name -> numpy array or list, one entry per row."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class DemoClock:
    """The moments the stories hinge on."""

    start: datetime
    end: datetime
    spike_start: datetime
    version_change: datetime
    drift_start: datetime


@dataclass(frozen=True)
class Story:
    """One demo strategy: its id, share of the rows and the function that builds its rows.

    ``build(rng, at, clock)`` gets the rows' moments (``at``, microseconds since the epoch, one
    per row) and returns their columns (see :func:`_outcomes`).
    """

    strategyId: str
    weight: float
    build: Callable[[np.random.Generator, npt.NDArray[np.int64], DemoClock], Columns]


def floor_hour(value: datetime) -> datetime:
    """The start of the hour holding ``value``."""
    return value.replace(minute=0, second=0, microsecond=0)


def make_clock(end: datetime, days: float) -> DemoClock:
    """Place the spike and the version change inside ``[end - days, end)``."""
    start = end - timedelta(days=days)
    spike = max(floor_hour(end) - timedelta(hours=SPIKE_HOURS_BEFORE_END), floor_hour(start))
    change = max(floor_hour(end) - timedelta(hours=VERSION_HOURS_BEFORE_END), floor_hour(start))
    drift = max(floor_hour(end) - timedelta(hours=DRIFT_HOURS_BEFORE_END), floor_hour(start))
    return DemoClock(start, end, spike, change, drift)


def _micros(value: datetime) -> int:
    return (value - EPOCH) // MICROSECOND


ERROR_MESSAGES = {
    "MISSING_FACT": "fact 'applicant.income' is not defined",
    "TYPE_MISMATCH": "cannot compare str with number in rule 'income_band'",
    "DIV_BY_ZERO": "division by zero in expression 'debt / income'",
    "UNKNOWN_FUNCTION": "unknown function 'score_v3' called from case 'legacy_bonus'",
    SPIKE_ERROR_CODE: "lookup service 'bureau-api' unavailable: connection refused",
    "TIMEOUT": "evaluation exceeded its 250 ms budget",
    "NODE_LIMIT_EXCEEDED": f"node budget of {NODE_BUDGET} exhausted",
    NEW_VERSION_ERROR_CODE: "tier table 'tiers_2026q1' is older than its rule set (1.5.0)",
}
COUNTRIES = np.array(["DE", "FR", "NL", "PL", "ES", "IT", "SE", "GB"], dtype=object)
CHANNELS = np.array(["web", "app", "branch"], dtype=object)
BACKGROUND_ERRORS = (
    ("MISSING_FACT", 0.6),
    ("TYPE_MISMATCH", 0.25),
    ("DIV_BY_ZERO", 0.1),
    ("UNKNOWN_FUNCTION", 0.05),
)


def _choose(
    rng: np.random.Generator, weighted: tuple[tuple[Any, float], ...], size: int
) -> npt.NDArray[Any]:
    """``size`` values drawn by weight (an object array; ``None`` is a value like any other)."""
    values = np.empty(len(weighted), dtype=object)
    values[:] = [value for value, _ in weighted]
    weights = np.array([weight for _, weight in weighted])
    return values[rng.choice(len(weighted), size=size, p=weights / weights.sum())]


def _lognormal(
    rng: np.random.Generator, median: float, sigma: float, size: int
) -> npt.NDArray[np.float64]:
    return median * np.exp(rng.normal(0.0, sigma, size))


def _outcomes(
    version: str | npt.NDArray[Any],
    case: npt.NDArray[Any],
    points: Mapping[str | None, float] | npt.NDArray[np.float64],
    duration: npt.NDArray[np.float64],
    nodes: npt.NDArray[Any],
) -> Columns:
    """Columns of rows that all ended ``ok``; :func:`_fail` then turns some of them."""
    size = len(case)
    if isinstance(points, Mapping):
        points = np.array([points[c] for c in case], dtype=np.float64)
    return {
        "strategyVersion": np.full(size, version, dtype=object)
        if isinstance(version, str)
        else version,
        "status": np.full(size, "ok", dtype=object),
        "errorCode": np.full(size, None, dtype=object),
        "caseName": case,
        "durationMs": duration,
        "nodes": nodes.astype(np.int64),
        "points": points,
    }


def _fail(
    columns: Columns,
    where: npt.NDArray[np.bool_],
    status: str,
    code: str | npt.NDArray[Any],
    duration: float | npt.NDArray[np.float64] | None = None,
    nodes: int | None = None,
) -> npt.NDArray[np.bool_]:
    """Turn the rows ``where`` into failures: no case, no points; returns the rows still ok."""
    columns["status"][where] = status
    columns["errorCode"][where] = code if isinstance(code, str) else code[where]
    columns["caseName"][where] = None
    columns["points"][where] = np.nan
    if duration is not None:
        columns["durationMs"][where] = duration if isinstance(duration, float) else duration[where]
    if nodes is not None:
        columns["nodes"][where] = nodes
    ok: npt.NDArray[np.bool_] = columns["status"] == "ok"
    return ok


def _background_failures(
    rng: np.random.Generator, columns: Columns, ok: npt.NDArray[np.bool_], rate: float
) -> npt.NDArray[np.bool_]:
    """Fail about ``rate`` of the ``ok`` rows with the skewed background error codes."""
    size = len(ok)
    hit = ok & (rng.random(size) < rate)
    return _fail(columns, hit, "error", _choose(rng, BACKGROUND_ERRORS, size))


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


def _credit_limit(rng: np.random.Generator, at: npt.NDArray[np.int64], clock: DemoClock) -> Columns:
    size = len(at)
    duration = _lognormal(rng, 4.0, 0.45, size)
    nodes = (40 + duration * 18 + rng.integers(0, 31, size)).astype(np.int64)
    case = _choose(rng, CREDIT_CASES, size)
    case[(at >= _micros(clock.drift_start)) & (case == DORMANT_CASE)] = None
    base = np.array([CREDIT_POINTS[c] for c in case], dtype=np.float64)
    points = base + np.round(rng.normal(0.0, 4.0, size), 1)
    columns = _outcomes("3.2.1", case, points, duration, nodes)
    ok = _fail(columns, rng.random(size) < 0.001, "timeout", "TIMEOUT", 250.0)
    _background_failures(rng, columns, ok, 0.004)
    return columns


def _fraud_screen(rng: np.random.Generator, at: npt.NDArray[np.int64], clock: DemoClock) -> Columns:
    size = len(at)
    duration = _lognormal(rng, 7.0, 0.5, size)
    nodes = (60 + duration * 15).astype(np.int64)
    case = _choose(rng, (("velocity_ok", 0.55), ("device_mismatch", 0.2), ("geo_risk", 0.1)), size)
    case[rng.random(size) < 0.15] = None
    points = {"velocity_ok": 0.0, "device_mismatch": -25.0, "geo_risk": -40.0, None: -5.0}
    columns = _outcomes("7.0.3", case, points, duration, nodes)
    spike = _micros(clock.spike_start)
    in_spike = (spike <= at) & (at < spike + 3_600_000_000)
    waited = duration + rng.uniform(20, 60, size)
    upstream = (in_spike & (rng.random(size) < 0.4)) | (rng.random(size) < 0.002)
    ok = _fail(columns, upstream, "error", SPIKE_ERROR_CODE, waited)
    _background_failures(rng, columns, ok, 0.01)
    return columns


def _kyc_depth(rng: np.random.Generator, at: npt.NDArray[np.int64], clock: DemoClock) -> Columns:
    size = len(at)
    country = COUNTRIES[rng.integers(0, len(COUNTRIES), size)]
    factor = np.where(country == HEAVY_COUNTRY, HEAVY_NODES, 1.0)
    factor *= np.where(at >= _micros(clock.drift_start), CREEP_NODES, 1.0)
    nodes = np.minimum(_lognormal(rng, 2100, 0.6, size) * factor, NODE_BUDGET).astype(np.int64)
    duration = nodes * rng.uniform(0.004, 0.006, size)
    case = _choose(
        rng, (("sanctions_clear", 0.5), ("pep_review", 0.15), ("doc_expired", 0.1)), size
    )
    case[rng.random(size) < 0.25] = None
    points = {"sanctions_clear": 100.0, "pep_review": 35.0, "doc_expired": 5.0, None: 0.0}
    columns = _outcomes("2.0.0", case, points, duration, nodes)
    limited = nodes >= NODE_BUDGET
    ok = _fail(columns, limited, "limit", "NODE_LIMIT_EXCEEDED", NODE_BUDGET * 0.005, NODE_BUDGET)
    _background_failures(rng, columns, ok, 0.006)
    columns["country"] = country
    return columns


def _pricing_tier(rng: np.random.Generator, at: npt.NDArray[np.int64], clock: DemoClock) -> Columns:
    size = len(at)
    slow = at >= _micros(clock.version_change)
    version = np.where(slow, "1.5.0", "1.4.0").astype(object)
    duration = _lognormal(rng, 12.0, 0.35, size) * np.where(slow, 2.0, 1.0)
    nodes = 150 + rng.integers(0, 81, size)
    case = _choose(rng, (("gold", 0.15), ("silver", 0.35), ("bronze", 0.4), (None, 0.1)), size)
    points = {"gold": 300.0, "silver": 150.0, "bronze": 60.0, None: 25.0}
    case[slow & (case == DROPPED_CASE)] = "silver"  # 1.5.0's gold rule never matches
    columns = _outcomes(version, case, points, duration, nodes)
    ok = _background_failures(rng, columns, np.ones(size, dtype=bool), 0.003)
    stale = ok & slow & (rng.random(size) < 0.03)  # and a new failure
    _fail(columns, stale, "error", NEW_VERSION_ERROR_CODE, duration)
    return columns


def _promo_eligibility(
    rng: np.random.Generator, at: npt.NDArray[np.int64], clock: DemoClock
) -> Columns:
    size = len(at)
    duration = _lognormal(rng, 2.5, 0.6, size)
    nodes = 20 + rng.integers(0, 26, size)
    case = _choose(rng, (("newsletter_bonus", 0.3), ("first_purchase", 0.25), (None, 0.45)), size)
    points = {"newsletter_bonus": 5.0, "first_purchase": 15.0, None: 0.0}
    columns = _outcomes("0.9.2", case, points, duration, nodes)
    _fail(columns, rng.random(size) < 0.02, "timeout", "TIMEOUT", 100.0)
    return columns


STORIES = (
    Story("credit-limit", 0.35, _credit_limit),
    Story("fraud-screen", 0.25, _fraud_screen),
    Story("kyc-depth", 0.15, _kyc_depth),
    Story("pricing-tier", 0.15, _pricing_tier),
    Story("promo-eligibility", 0.10, _promo_eligibility),
)


def stories(count: int) -> tuple[Story, ...]:
    """The first ``count`` stories; past five, extra healthy strategies ``strategy-06``..."""
    if count < 1:
        raise ValueError(f"strategies must be at least 1, got {count}")
    extra = tuple(
        Story(f"strategy-{i:02d}", 0.05, _credit_limit) for i in range(len(STORIES) + 1, count + 1)
    )
    return (STORIES + extra)[:count]


def _intensity(hour: Any) -> Any:
    """Relative traffic at an hour of the (UTC) day, a float or an array: busier by day."""
    return 0.55 + 0.45 * np.sin(np.pi * (hour - 4) / 24) ** 2


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


@functools.cache
def _edges(plan: DemoPlan) -> list[int]:
    """Batch boundaries (epoch microseconds): equal shares of the cumulative traffic, so the
    batches stay time-ordered."""
    clock = make_clock(plan.end, plan.days)
    start, end = _micros(clock.start), _micros(clock.end)
    grid = np.append(np.arange(start, end, 600_000_000, dtype=np.int64), end)
    hours = (grid[:-1] // 60_000_000 % 1440) / 60
    cumulative = np.concatenate(([0.0], np.cumsum(_intensity(hours) * np.diff(grid))))
    targets = cumulative[-1] * np.minimum(np.arange(plan.batches + 1) * BATCH_SIZE, plan.rows)
    targets /= max(plan.rows, 1)
    return [int(x) for x in np.interp(targets, cumulative, grid)]


def _times(rng: np.random.Generator, left: int, right: int, count: int) -> npt.NDArray[np.int64]:
    """``count`` sorted moments (epoch microseconds) in ``[left, right)``, drawn with the daily
    traffic pattern (rejection sampling)."""
    found: list[npt.NDArray[np.int64]] = []
    missing = count
    while missing > 0:
        draws = 2 * missing + 16
        at = left + (rng.random(draws) * (right - left)).astype(np.int64)
        hours = (at // 60_000_000 % 1440) / 60
        kept = at[(at < right) & (rng.random(draws) < _intensity(hours))][:missing]
        found.append(kept)
        missing -= len(kept)
    return np.sort(np.concatenate(found))


def _seed(plan: DemoPlan, index: int) -> int:
    digest = hashlib.sha256(f"stratlog-demo:{plan.seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:16], "big")


def batch_columns(plan: DemoPlan, index: int) -> Columns:
    """Batch ``index`` of the plan, column-wise (plain Python lists, in time order).

    Deterministic and independent of the other batches, so any process can build any batch.
    """
    clock = make_clock(plan.end, plan.days)
    edges = _edges(plan)
    rng = np.random.default_rng(_seed(plan, index))
    chosen = stories(plan.strategies)
    count = plan.batch_rows(index)
    at = _times(rng, edges[index], edges[index + 1], count)
    weights = np.array([story.weight for story in chosen])
    picks = rng.choice(len(chosen), size=count, p=weights / weights.sum())
    names = np.empty(len(chosen), dtype=object)
    names[:] = [story.strategyId for story in chosen]
    columns: Columns = {"strategyId": names[picks]}
    for number, story in enumerate(chosen):
        rows = np.flatnonzero(picks == number)
        if not len(rows):
            continue
        for key, values in story.build(rng, at[rows], clock).items():
            if key not in columns:
                columns[key] = np.empty(count, dtype=values.dtype)
            columns[key][rows] = values
    return _finish(rng, columns, at)


#: A failed run's income, so its input shows the cause its message names (``None``: the fact
#: is missing).
_FAILED_INCOME: dict[str, Any] = {
    "MISSING_FACT": None,  # "fact 'applicant.income' is not defined"
    "TYPE_MISMATCH": "n/a",  # a string where the rule compares a number
    "DIV_BY_ZERO": 0.0,  # 'debt / income'
}


def _match_failures(inputs: list[dict[str, Any]], codes: list[str | None]) -> None:
    """Make each failed run's input agree with its error code (in place)."""
    for payload, code in zip(inputs, codes, strict=True):
        if code in _FAILED_INCOME:
            income = _FAILED_INCOME[code]
            if income is None:
                del payload["applicant"]["income"]
            else:
                payload["applicant"]["income"] = income


def _finish(rng: np.random.Generator, columns: Columns, at: npt.NDArray[np.int64]) -> Columns:
    """Round, add request ids, messages, payloads and timestamps; numpy to plain Python."""
    count = len(at)
    status = columns["status"].tolist()
    case = columns["caseName"].tolist()
    code = columns["errorCode"].tolist()
    raw_points = columns["points"]
    points = np.round(raw_points, 1).astype(object)
    points[np.isnan(raw_points)] = None
    points = points.tolist()
    ids = rng.integers(0, 2**64, count, dtype=np.uint64).tolist()
    ages = (18 + rng.integers(0, 73, count)).tolist()
    countries = COUNTRIES[rng.integers(0, len(COUNTRIES), count)]
    if "country" in columns:  # a story that chose its applicants' countries
        chosen = columns["country"]
        countries = np.where(chosen == None, countries, chosen)  # noqa: E711 (elementwise)
    countries = countries.tolist()
    incomes = np.round(_lognormal(rng, 36_000, 0.5, count), 2).tolist()
    amounts = np.round(_lognormal(rng, 1_100, 1.0, count), 2).tolist()
    channels = CHANNELS[rng.integers(0, len(CHANNELS), count)].tolist()
    inputs: list[dict[str, Any]] = [
        {"applicant": {"age": a, "country": c, "income": i}, "amount": m, "channel": ch}
        for a, c, i, m, ch in zip(ages, countries, incomes, amounts, channels, strict=True)
    ]
    _match_failures(inputs, code)
    return {
        "strategyId": columns["strategyId"].tolist(),
        "strategyVersion": columns["strategyVersion"].tolist(),
        "requestId": [f"req-{i:016x}" for i in ids],
        "status": status,
        "errorCode": code,
        "errorMessage": [ERROR_MESSAGES.get(c) if c else None for c in code],
        "caseName": case,
        "durationMs": np.round(columns["durationMs"], 3).tolist(),
        "nodes": columns["nodes"].tolist(),
        "points": points,
        "inputPayload": inputs,
        "outputPayload": [
            {"case": c, "points": p, "status": s}
            for c, p, s in zip(case, points, status, strict=True)
        ],
        "createdAt": [EPOCH + timedelta(microseconds=t) for t in at.tolist()],
    }


def generate_batch(plan: DemoPlan, index: int) -> list[Row]:
    """Batch ``index`` of the plan as row dicts: deterministic, independent of other batches."""
    columns = batch_columns(plan, index)
    keys = list(columns)
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns.values(), strict=True)]


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

    The rows are the ones :func:`generate` yields. For more than ``PREFETCH`` batches, worker
    processes generate batches a few ahead while this one inserts them; until the workers are
    up (they import numpy and SQLAlchemy, about half a second), this process generates the
    batches itself, so inserting starts at once. Given the ``database_url``, batches also go
    through the column types' bind processors where they are generated
    (:func:`~stratlog.repository.bulk.prepare_bulk_columns`), so
    inserting only hands finished tuples to the driver.
    """
    plan = make_plan(rows, strategies, days, seed, end)
    started = time.perf_counter()
    written = 0
    loop = asyncio.get_running_loop()
    work = functools.partial(prepared_batch, database_url) if database_url else generate_batch
    # Starting a worker blocks until the process is up, so it happens in a thread.
    starting = loop.run_in_executor(None, _start_workers) if plan.batches > PREFETCH else None
    pool: ProcessPoolExecutor | None = None
    ahead: dict[int, asyncio.Future[Any]] = {}
    try:
        for index in range(plan.batches):
            if pool is None and starting is not None and starting.done():
                pool = _started(starting)
                starting = None
            if pool is not None:
                for i in range(index + 1, min(index + 1 + PREFETCH, plan.batches)):
                    if i not in ahead:
                        ahead[i] = loop.run_in_executor(pool, work, plan, i)
            batch = await ahead.pop(index) if index in ahead else work(plan, index)
            count = await (
                repository.insert_prepared(batch)
                if isinstance(batch, tuple)
                else repository.insert_many(cast(list[Row], batch))
            )
            written += count
            if progress is not None:
                progress(count)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if starting is not None:  # not up yet: stop the workers once they are
            starting.add_done_callback(_stop_started)
    return DemoResult(written, time.perf_counter() - started)


def _start_workers() -> ProcessPoolExecutor:
    """A pool whose ``WORKERS`` processes are up (blocks until they are)."""
    pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=_mp_context())
    for ready in [pool.submit(_worker_ready) for _ in range(WORKERS)]:
        ready.result()
    return pool


def _started(starting: asyncio.Future[ProcessPoolExecutor]) -> ProcessPoolExecutor | None:
    """The started pool, or ``None`` (logged) if the workers could not start."""
    try:
        return starting.result()
    except Exception:
        log.warning(
            "demo worker processes did not start; generating in this process", exc_info=True
        )
        return None


def _stop_started(starting: asyncio.Future[ProcessPoolExecutor]) -> None:
    pool = None if starting.cancelled() or starting.exception() else starting.result()
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _worker_ready() -> bool:
    """A no-op task: its result says a worker process is up."""
    return True


def prepared_batch(database_url: str, plan: DemoPlan, index: int) -> PreparedBulk:
    """Batch ``index``, bind-processed for the database's dialect (runs in the worker)."""
    dialect = _dialect(database_url)
    return prepare_bulk_columns(StrategyExecutionLog, dialect, batch_columns(plan, index))


@functools.cache
def _dialect(database_url: str) -> Any:
    from stratlog.db import make_engine

    return make_engine(database_url).dialect  # no connection is opened


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver avoids forking a process that holds an event loop and database threads. The
    # server imports this module once, so each worker it forks is ready at once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context
