"""Load (issue 6): concurrent Streamlit sessions browse the dashboard on a large PostgreSQL database.

    .venv/bin/python -m bench.load_dashboard [--sessions 20] [--seconds 120] [--rows 2000000]
        [--pool-size 5] [--think 0.5] [--custom-share 0.5] [--database-url URL [--admin-url URL]]

Without ``--database-url`` it starts a throwaway PostgreSQL 15 (tests/pg.py), writes ``--rows``
demo rows over 30 days (the rows ``stratlog demo`` writes, generated on every core and COPYed
in), folds them into the rollups as ``stratlog rollup`` would, and creates the read-only role of
docs/operating.md by executing the SQL printed there. The dashboard (``streamlit run
dashboard.py`` on a free loopback port, with the production settings of that page) logs in as
that role with ``STRATLOG_POOL_SIZE`` set.

Each session is a real Streamlit client: a websocket to ``/_stcore/stream`` speaking Streamlit's
protocol (``BackMsg`` / ``ForwardMsg`` from ``streamlit.proto``) and sending what the browser
sends on a page load, ``rerun_script`` with the page and its query string. A session opens the
Overview, then the runbook (sometimes filtered by status), then one row's detail page, again
and again, each round for a random strategy and window (a preset, or with ``--custom-share``
probability a custom window somewhere in the data, which no cache holds), and opens a new
websocket every few pages as a new tab would. Page time runs from the request to
``script_finished``: everything the server does for the page, data included. Exception
elements, error alerts, unknown pages, timeouts and dropped connections are errors; warnings are
counted and shown. ``--sessions 1,20`` runs one level after the other on the same dashboard.

Meanwhile ``pg_stat_activity`` is polled every 0.5 s for the dashboard role's connections, and
the dashboard process's sockets to the server are counted from /proc as a cross-check. It prints
sessions, duration, page loads, errors, p50/p95 page time, the connection peak against the pool
size, the dashboard's CPU and peak RSS (VmHWM), and checks its log for tracebacks and for the
database password. The exit code is 1 on any error or when the connections ever exceed the pool
size. All traffic stays on 127.0.0.1 and every loop stops by time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402
from streamlit.proto.Alert_pb2 import Alert  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from stratlog.config import redact_url  # noqa: E402
from stratlog.db import make_engine, make_session_factory, upgrade  # noqa: E402
from stratlog.demo import floor_hour, generate_batch, make_plan  # noqa: E402
from stratlog.model.strategy_execution_log import COVERING_INDEX_COLUMNS  # noqa: E402
from stratlog.repository import StrategyExecutionLogRepository  # noqa: E402
from stratlog.rollup import RollupJob  # noqa: E402
from tests.pg import PostgresServer, free_port  # noqa: E402
from tests.test_readonly_role import documented_sql, documented_url  # noqa: E402

PRESETS = {"15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080, "30d": 43200}  # minutes
RUNBOOK_STATUSES = (None, None, "error", "timeout", "limit")
PAGES = {"overview": "", "runbook": "runbook", "row": "row"}  # name -> Streamlit url path
DAYS = 30
PG_SETTINGS = {"shared_buffers": "512MB", "work_mem": "32MB", "jit": "off",
               "max_wal_size": "4GB", "checkpoint_timeout": "30min"}  # fmt: skip
POLL_S = 0.5
#: The production settings of docs/operating.md, on the command line (they override the file).
PRODUCTION_OPTIONS = ("--client.showErrorDetails", "none", "--server.enableXsrfProtection", "true",
                      "--browser.gatherUsageStats", "false")  # fmt: skip
SERVER_START_S = 90


def log(line: str) -> None:
    """Progress on stderr; the figures go to stdout."""
    print(line, file=sys.stderr, flush=True)


# -- the database -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """Where the dashboard reads (its role's URL) and where the benchmark looks from."""

    dashboard_url: str
    admin_url: str
    rows: int
    note: str


async def load_demo(engine: AsyncEngine, rows: int) -> float:
    """The demo rows of ``stratlog demo --days 30``, generated on every core; returns seconds."""
    started = time.perf_counter()
    plan = make_plan(rows, days=DAYS, end=floor_hour(datetime.now(UTC)))
    repo = StrategyExecutionLogRepository(make_session_factory(engine))
    async with engine.begin() as conn:  # one index build after the load beats maintaining it
        await conn.execute(text("DROP INDEX ix_strategy_execution_log_covering"))
    workers = max(1, os.cpu_count() or 1)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        ahead = collections.deque(
            loop.run_in_executor(pool, generate_batch, plan, i)
            for i in range(min(2 * workers, plan.batches))
        )
        for index in range(plan.batches):
            batch = await ahead.popleft()
            if index + len(ahead) + 1 < plan.batches:
                ahead.append(
                    loop.run_in_executor(pool, generate_batch, plan, index + len(ahead) + 1)
                )
            await repo.insert_many(batch)
            if index % 40 == 0:
                log(f"  loaded {min((index + 1) * len(batch), rows):,} / {rows:,} rows")
    cols = ", ".join(COVERING_INDEX_COLUMNS)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE INDEX ix_strategy_execution_log_covering ON strategy_execution_log ({cols})"
            )
        )
    return time.perf_counter() - started


async def vacuum(engine: AsyncEngine) -> None:
    """What autovacuum would have done by now (index-only scans need the visibility map)."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))


@contextlib.asynccontextmanager
async def own_database(rows: int) -> AsyncIterator[Database]:
    """A throwaway PostgreSQL with demo data, rollups and the documented read-only role."""
    server = PostgresServer()
    server.start(PG_SETTINGS)
    try:
        role_url = documented_url()
        name = role_url.database
        admin = make_engine(server.url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        owner_url = make_url(server.url).set(database=name).render_as_string(hide_password=False)
        owner = make_engine(owner_url, pool_size=2)
        try:
            await upgrade(owner)
            loaded = await load_demo(owner, rows)
            log(f"  {rows:,} rows in {loaded:.0f} s; rolling up...")
            started = time.perf_counter()
            await RollupJob(owner, 1_000_000).catch_up()
            rolled = time.perf_counter() - started
            await vacuum(owner)
            async with owner.connect() as conn:  # docs/operating.md, verbatim
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                await raw.execute(documented_sql())
        finally:
            await owner.dispose()
        reader = role_url.set(host="127.0.0.1", port=server.port)
        note = (
            f"PostgreSQL 15 (throwaway), {rows:,} demo rows over {DAYS} days: loaded in "
            f"{loaded:.0f} s ({rows / loaded:,.0f} rows/s), rollups in {rolled:.0f} s; "
            f"dashboard role {role_url.username} (docs/operating.md)"
        )
        yield Database(reader.render_as_string(hide_password=False), owner_url, rows, note)
    finally:
        server.cleanup()


@contextlib.asynccontextmanager
async def given_database(url: str, admin_url: str | None) -> AsyncIterator[Database]:
    """A database someone else runs: the dashboard reads ``url``; polling uses ``admin_url``."""
    engine = make_engine(admin_url or url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = int(await conn.scalar(text("SELECT count(*) FROM strategy_execution_log")) or 0)
    finally:
        await engine.dispose()
    yield Database(url, admin_url or url, rows, f"{redact_url(url)}, {rows:,} rows")


# -- what the sessions open ---------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """Strategies, the data's time range and sampled rows (id, strategy, createdAt)."""

    strategies: list[str]
    first: datetime
    last: datetime
    rows: list[tuple[int, str, datetime]]


async def targets(admin: AsyncEngine) -> Targets:
    """Read what there is to browse: strategies, time range, 600 rows half of them failures."""
    async with admin.connect() as conn:
        strategies = list(
            await conn.scalars(text("SELECT DISTINCT strategy_id FROM strategy_execution_log"))
        )
        first, last = (
            await conn.execute(
                text("SELECT min(created_at), max(created_at) FROM strategy_execution_log")
            )
        ).one()
        sample = (
            await conn.execute(
                text(
                    "(SELECT id, strategy_id, created_at FROM strategy_execution_log "
                    " TABLESAMPLE SYSTEM (1) LIMIT 300) UNION ALL "
                    "(SELECT id, strategy_id, created_at FROM strategy_execution_log "
                    " TABLESAMPLE SYSTEM (5) WHERE status <> 'ok' LIMIT 300)"
                )
            )
        ).all()
    if not strategies or not sample:
        raise SystemExit("the database holds no audit rows to browse")
    rows = [(int(i), str(s), at.astimezone(UTC)) for i, s, at in sample]
    return Targets(sorted(strategies), first.astimezone(UTC), last.astimezone(UTC), rows)


def iso(at: datetime) -> str:
    """The dashboard's URL form of a UTC time."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window(rng: random.Random, t: Targets, custom_share: float) -> dict[str, str]:
    """A preset window ending now, or a custom one of a preset's length inside the data."""
    preset = rng.choice(list(PRESETS))
    if rng.random() >= custom_share:
        return {"window": preset}
    span = timedelta(minutes=PRESETS[preset])
    latest = t.last.replace(second=0, microsecond=0) + timedelta(minutes=1)
    room = max(0, int((latest - t.first - span).total_seconds() // 60))
    until = latest - timedelta(minutes=rng.randint(0, room))
    return {"window": "custom", "since": iso(until - span), "until": iso(until)}


def visit(rng: random.Random, t: Targets, custom_share: float) -> list[tuple[str, str]]:
    """One operator's round: Overview, runbook, one row's detail; (page, query string) each."""
    strategy = rng.choice(t.strategies)
    view = {"strategy": strategy, **window(rng, t, custom_share)}
    status = rng.choice(RUNBOOK_STATUSES)
    runbook = {**view, **({"status": status} if status else {})}
    row_id, row_strategy, at = rng.choice(t.rows)
    around = at.replace(second=0, microsecond=0)
    row = {"strategy": row_strategy, "window": "custom", "since": iso(around - timedelta(hours=6)),
           "until": iso(around + timedelta(hours=6)), "row": str(row_id)}  # fmt: skip
    return [("overview", urlencode(view)), ("runbook", urlencode(runbook)), ("row", urlencode(row))]


# -- one Streamlit session ----------------------------------------------------------------------


@dataclass
class Results:
    """Everything the sessions measured."""

    times: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: list[str] = field(default_factory=list)
    warnings: collections.Counter[str] = field(default_factory=collections.Counter)
    connections: int = 0

    @property
    def loads(self) -> int:
        """Page loads that finished."""
        return sum(len(v) for v in self.times.values())


def problems_in(msg: ForwardMsg) -> tuple[list[str], list[str]]:
    """Errors and warnings one forward message carries."""
    kind = msg.WhichOneof("type")
    if kind == "page_not_found":
        return [f"page not found: {msg.page_not_found.page_name!r}"], []
    if kind == "ref_hash":  # content we never saw: the client announced no cache
        return [f"unexpected cached-message reference {msg.ref_hash}"], []
    if kind == "session_event" and msg.session_event.WhichOneof("type") == (
        "script_compilation_exception"
    ):
        return [f"compile error: {msg.session_event.script_compilation_exception.message}"], []
    if kind != "delta" or msg.delta.WhichOneof("type") != "new_element":
        return [], []
    element = msg.delta.new_element
    which = element.WhichOneof("type")
    if which == "exception":
        exc = element.exception
        return [f"exception element: {exc.type}: {exc.message}"[:300]], []
    if which == "alert" and element.alert.format == Alert.ERROR:
        return [f"error alert: {element.alert.body}"[:300]], []
    if which == "alert" and element.alert.format == Alert.WARNING:
        return [], [element.alert.body[:160]]
    return [], []


async def open_page(
    ws: ClientConnection, page: str, query: str, limit_s: float
) -> tuple[float, list[str], list[str]]:
    """What the browser does on a page load; returns (seconds, errors, warnings)."""
    request = BackMsg()
    request.rerun_script.query_string = query
    request.rerun_script.page_name = PAGES[page]
    started = time.perf_counter()
    await ws.send(request.SerializeToString())
    errors: list[str] = []
    warnings: list[str] = []
    deadline = started + limit_s
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError(f"{page}?{query} did not finish within {limit_s:g} s")
        raw = await asyncio.wait_for(ws.recv(), left)
        msg = ForwardMsg()
        msg.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
        bad, odd = problems_in(msg)
        errors += bad
        warnings += odd
        if msg.WhichOneof("type") != "script_finished":
            continue
        status = msg.script_finished
        if status == ForwardMsg.FINISHED_SUCCESSFULLY:
            return time.perf_counter() - started, errors, warnings
        if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            return time.perf_counter() - started, [*errors, "compile error"], warnings
        # FINISHED_EARLY_FOR_RERUN: the page reran itself (st.rerun / switch_page); keep reading


@dataclass(frozen=True)
class Plan:
    """How the sessions browse."""

    base: str
    targets: Targets
    deadline: float
    think_s: float
    custom_share: float
    page_timeout: float
    pages_per_connection: int


async def session(number: int, plan: Plan, results: Results) -> None:
    """One operator: rounds of Overview → runbook → row until the deadline; new tab now and then."""
    rng = random.Random(number)
    stream = plan.base.replace("http://", "ws://") + "/_stcore/stream"
    while time.monotonic() < plan.deadline:
        try:
            async with connect(
                stream, subprotocols=["streamlit"], max_size=None, open_timeout=plan.page_timeout
            ) as ws:
                results.connections += 1
                await browse(ws, rng, plan, results)
        except Exception as exc:  # every failure is counted, none hidden
            results.errors.append(f"session {number}: {type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(1.0)


async def browse(ws: ClientConnection, rng: random.Random, plan: Plan, results: Results) -> None:
    """Up to ``pages_per_connection`` page loads on one websocket."""
    done = 0
    while done < plan.pages_per_connection and time.monotonic() < plan.deadline:
        for page, query in visit(rng, plan.targets, plan.custom_share):
            if time.monotonic() >= plan.deadline:
                return
            seconds, errors, warnings = await open_page(ws, page, query, plan.page_timeout)
            results.times[page].append(seconds)
            results.errors += [f"{page}?{query}: {e}" for e in errors]
            results.warnings.update(warnings)
            done += 1
            await asyncio.sleep(rng.uniform(0, 2 * plan.think_s))


# -- watching the dashboard and the database ----------------------------------------------------


@dataclass
class Watch:
    """Connection and memory peaks seen while the sessions ran."""

    polls: int = 0
    max_connections: int = 0
    max_active: int = 0
    sum_active: int = 0
    max_sockets: int = 0
    failures: list[str] = field(default_factory=list)


def sockets_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to ``port`` (from /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as lines:
            for line in list(lines)[1:]:
                parts = line.split()
                remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                if remote_port == port and parts[3] == "01" and parts[9] in inodes:
                    count += 1
    return count


async def watch(
    admin: AsyncEngine,
    role: str,
    database: str,
    pid: int,
    port: int,
    stop: asyncio.Event,
    seen: Watch,
) -> None:
    """Poll pg_stat_activity every 0.5 s for the dashboard role's client connections."""
    sql = text(
        "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
        "WHERE usename = :role AND datname = :db AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    async with admin.connect() as conn:
        while not stop.is_set():
            try:
                total, active = (await conn.execute(sql, {"role": role, "db": database})).one()
                await conn.commit()
            except Exception as exc:  # reported: a poll that fails is a hole in the evidence
                seen.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            else:
                seen.polls += 1
                seen.max_connections = max(seen.max_connections, int(total))
                seen.max_active = max(seen.max_active, int(active))
                seen.sum_active += int(active)
            seen.max_sockets = max(seen.max_sockets, sockets_to(pid, port))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the dashboard ------------------------------------------------------------------------------


@contextlib.contextmanager
def dashboard(
    url: str, pool_size: int, logfile: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``streamlit run dashboard.py`` on a free loopback port, reading ``url``."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--server.fileWatcherType", "none", *PRODUCTION_OPTIONS,
    ]  # fmt: skip
    env = {**os.environ, "STRATLOG_DATABASE_URL": url, "STRATLOG_POOL_SIZE": str(pool_size)}
    with logfile.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"streamlit did not start:\n{logfile.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as answer,
            ):
                if answer.status == 200:
                    break
            time.sleep(0.2)
        yield process, base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (seconds in, milliseconds out)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


async def warm_up(plan: Plan) -> None:
    """One load of each page first: a fresh server imports pandas, Altair... (not measured)."""
    stream = plan.base.replace("http://", "ws://") + "/_stcore/stream"
    async with connect(stream, subprotocols=["streamlit"], max_size=None) as ws:
        for page, query in visit(random.Random(-1), plan.targets, 0.0):
            _, errors, _ = await open_page(ws, page, query, plan.page_timeout)
            if errors:
                raise SystemExit(f"warm-up {page}: {errors[:3]}")


@dataclass
class Level:
    """What one run of ``sessions`` concurrent clients measured."""

    sessions: int
    results: Results
    seen: Watch
    seconds: float
    cpu_s: float
    client_cpu_s: float
    load_at_start: tuple[float, ...]


@dataclass
class Outcome:
    """Every level, and what the dashboard process left behind."""

    levels: list[Level]
    rss_mb: float
    alive: bool
    server_log: str


async def browse_level(
    plan: Plan, sessions: int, seconds: float, admin: AsyncEngine, where: tuple[str, str, int, int]
) -> Level:
    """``sessions`` clients browse for ``seconds`` while the connections are watched."""
    seen, results, stop = Watch(), Results(), asyncio.Event()
    watcher = asyncio.create_task(watch(admin, *where, stop, seen))
    load_at_start, cpu_before = os.getloadavg(), cpu_seconds(where[2])
    client_before = time.process_time()
    started = time.monotonic()
    plan = dataclasses.replace(plan, deadline=started + seconds)
    clients = [session(i, plan, results) for i in range(sessions)]
    await asyncio.wait_for(asyncio.gather(*clients), seconds + plan.page_timeout + 30)
    elapsed = time.monotonic() - started
    stop.set()
    await watcher
    cpu = cpu_seconds(where[2]) - cpu_before
    client = time.process_time() - client_before
    return Level(sessions, results, seen, elapsed, cpu, client, load_at_start)


async def measure(args: argparse.Namespace, db: Database, admin: AsyncEngine) -> Outcome:
    """Start the dashboard, warm it up, then browse with each ``--sessions`` count in turn."""
    found = await targets(admin)
    role = make_url(db.dashboard_url)
    levels = []
    with tempfile.TemporaryDirectory() as tmp:
        logfile = Path(tmp) / "streamlit.log"
        with dashboard(db.dashboard_url, args.pool_size, logfile) as (process, base):
            plan = Plan(base, found, 0.0, args.think, args.custom_share, args.page_timeout,
                        args.pages_per_connection)  # fmt: skip
            await warm_up(plan)
            where = (str(role.username), str(role.database), process.pid, int(role.port or 5432))
            for sessions in args.sessions:
                log(f"  {sessions} sessions for {args.seconds:g} s...")
                levels.append(await browse_level(plan, sessions, args.seconds, admin, where))
            alive = process.poll() is None
            rss = peak_rss_mb(process.pid)
        server_log = logfile.read_text(errors="replace")
    return Outcome(levels, rss, alive, server_log)


async def run(args: argparse.Namespace) -> int:
    """Set up, browse for ``--seconds`` with ``--sessions`` clients, print the figures."""
    load_before = os.getloadavg()
    if args.database_url:
        source = given_database(args.database_url, args.admin_url)
    else:
        source = own_database(args.rows)
    async with source as db:
        log(db.note)
        admin = make_engine(db.admin_url, pool_size=2)
        try:
            outcome = await measure(args, db, admin)
        finally:
            await admin.dispose()
    return report(args, db, outcome, load_before)


def level_lines(args: argparse.Namespace, level: Level) -> tuple[list[str], list[str]]:
    """The figures of one level, and its errors."""
    results, seen = level.results, level.seen
    every = [t for values in results.times.values() for t in values]
    pages = sorted(results.times.items())
    counts = ", ".join(f"{page} {len(v)}" for page, v in pages)
    per_page = ", ".join(
        f"{page} {percentile(v, 0.5):.0f}/{percentile(v, 0.95):.0f}" for page, v in pages
    )
    errors = list(results.errors) + [f"pg_stat_activity poll failed: {f}" for f in seen.failures]
    if seen.max_connections > args.pool_size:
        errors.append(f"{seen.max_connections} connections, above the pool size {args.pool_size}")
    lines = [
        f"sessions            {level.sessions} Streamlit websocket clients (think time 0-"
        f"{2 * args.think:g} s, {args.custom_share:.0%} custom windows, a new websocket every "
        f"{args.pages_per_connection} pages: {results.connections} opened)",
        f"duration            {level.seconds:.1f} s",
        f"page loads          {results.loads} ({counts}), {results.loads / level.seconds:.1f}/s",
        f"errors              {len(errors)}",
        f"warnings shown      {sum(results.warnings.values())}",
        f"page time           p50 {percentile(every, 0.5):.0f} ms, p95 "
        f"{percentile(every, 0.95):.0f} ms (request to script_finished; by page p50/p95 ms: "
        f"{per_page})",
        f"DB connections      max {seen.max_connections} (active: max {seen.max_active}, mean "
        f"{seen.sum_active / max(seen.polls, 1):.1f}) of the dashboard's role in {seen.polls} polls "
        f"of pg_stat_activity every {POLL_S:g} s; pool size {args.pool_size} (STRATLOG_POOL_SIZE, "
        f"no overflow); dashboard sockets to PostgreSQL max {seen.max_sockets} (/proc)",
        f"dashboard CPU       {level.cpu_s:.0f} s in {level.seconds:.0f} s = "
        f"{level.cpu_s / level.seconds:.2f} cores (the clients: {level.client_cpu_s:.0f} s); load "
        f"average at start {_load(level.load_at_start)}",
    ]
    for line in errors[:10]:
        lines.append(f"  error: {line}")
    for shown, count in results.warnings.most_common(5):
        lines.append(f"  warning x{count}: {shown}")
    return lines, errors


def report(args: argparse.Namespace, db: Database, out: Outcome, load_before: Any) -> int:
    """Print the figures; the exit code says whether the run passed."""
    print(f"database            {db.note}")
    errors = [] if out.alive else ["the dashboard process died"]
    for level in out.levels:
        lines, found = level_lines(args, level)
        print("\n".join(lines))
        errors += found
        if level.results.loads == 0:
            errors.append(f"no page load finished with {level.sessions} sessions")
    tracebacks = out.server_log.count("Traceback (most recent call last)")
    if tracebacks:
        errors.append(f"{tracebacks} traceback(s) in the dashboard's log")
    password = make_url(db.dashboard_url).password
    leaked = bool(password) and str(password) in out.server_log
    if leaked:
        errors.append("the database password appears in the dashboard's log")
    print(
        f"dashboard config    {' '.join(PRODUCTION_OPTIONS)}; its log: "
        f"{len(out.server_log):,} bytes, {tracebacks} tracebacks, password in it: "
        f"{'YES' if leaked else 'no'}\n"
        f"dashboard peak RSS  {out.rss_mb:.0f} MiB (VmHWM)\n"
        f"load average        {_load(load_before)} before setup, {_load(os.getloadavg())} at the "
        f"end ({os.cpu_count()} cores, shared with other work)"
    )
    print(f"verdict             {'FAIL' if errors else 'ok'} ({len(errors)} errors in total)")
    return 1 if errors else 0


def _load(values: Any) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def session_counts(text_: str) -> list[int]:
    """``20`` or ``1,20``: one run per count, in order, on the same dashboard."""
    counts = [int(part) for part in text_.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("expected positive counts like 20 or 1,20")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=session_counts, default=[20],
                        help="concurrent sessions; 1,20 runs 1 then 20")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rows", type=int, default=2_000_000, help="demo rows (own database)")
    parser.add_argument("--pool-size", type=int, default=5, help="STRATLOG_POOL_SIZE")
    parser.add_argument("--think", type=float, default=0.5, help="mean pause between pages (s)")
    parser.add_argument(
        "--custom-share", type=float, default=0.5, help="share of custom windows (cache misses)"
    )
    parser.add_argument("--page-timeout", type=float, default=60.0)
    parser.add_argument("--pages-per-connection", type=int, default=9)
    parser.add_argument("--database-url", help="an existing database (default: start one)")
    parser.add_argument(
        "--admin-url", help="for polling pg_stat_activity (default: --database-url)"
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.pool_size < 1:
        parser.error("--seconds and --pool-size must be positive")
    if args.database_url and not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
