"""Where a page's server time goes (issue 17): CPU per page kind, cached and uncached, and a
sampled breakdown by layer.

    .venv/bin/python -m bench.profile_pages [--rows 500000] [--loads 12] [--database-url URL]

Without ``--database-url`` it starts the throwaway PostgreSQL of ``make load`` (demo rows,
rollups, the read-only role). One dashboard process (``streamlit run dashboard.py``, production
settings) serves one client at a time, so every CPU-second the process spends between a
request and its ``script_finished`` belongs to that page: the figure is the process's user plus
system time from ``/proc/PID/stat``, the script thread, the data loop and the server's event
loop alike (10 ms ticks: the mean over the loads is the precise figure). Each page kind is loaded ``--loads`` times *uncached* (a custom
window nobody asked for before, a different one each load) and ``--loads`` times *cached* (the
same link again: Streamlit's caches hold the result and the chart specs).

Pass 2 attaches ``py-spy`` (PyPI) to the same process and repeats the loads; every sample is
put in one layer by the frames on its stack (first match wins, in this order): Arrow / protobuf
serialisation, Altair validation, data fetch (repository, service, SQLAlchemy, asyncpg), chart
specs (``stratlog/charts.py``, Altair), DataFrames (pandas), our page code (``stratlog/ui``,
``pages/``), Streamlit's own element code, and the server (uvicorn, starlette, websockets,
asyncio). It prints the shares per page kind and the hottest functions.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.load_dashboard import (  # noqa: E402
    Database,
    Targets,
    cpu_seconds,
    dashboard,
    given_database,
    iso,
    log,
    open_page,
    own_database,
    targets,
)
from stratlog.db import make_engine  # noqa: E402

#: Page kinds: (Streamlit page, extra query for the view).
KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "overview": ("overview", {}),
    "overview+compare": ("overview", {"compare": "previous"}),
    "runbook": ("runbook", {}),
    "row": ("row", {}),
    "insights": ("insights", {}),
}

#: Layers, first match wins: (name, substrings of a frame "function (file:line)").
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("Arrow / protobuf serialisation", ("convert_anything_to_arrow", "pyarrow/",
                                        "SerializeToString", "google/protobuf",
                                        "_stabilize_vega_json_spec", "_marshall_chart_data")),
    ("jsonschema validation (Altair)", ("jsonschema/", "validate_jsonschema")),
    ("data fetch", ("stratlog/repository/", "stratlog/service/", "sqlalchemy/", "asyncpg/",
                    "aiosqlite/", "stratlog/ui/bridge.py")),
    ("Altair objects and to_dict", ("altair/",)),
    ("our chart builders", ("stratlog/charts.py",)),
    ("DataFrames (pandas)", ("pandas/",)),
    ("our page code", ("stratlog/ui/", "/pages/", "dashboard.py", "stratlog/")),
    ("Streamlit elements and script runner", ("streamlit/",)),
    ("server (uvicorn, starlette, websockets, asyncio)", ("uvicorn/", "starlette/",
                                                          "websockets/", "asyncio/")),
]  # fmt: skip


@dataclass
class Load:
    kind: str
    cached: bool
    wall_ms: float
    cpu_ms: float


def queries(kind: str, t: Targets, rng: random.Random, count: int) -> list[str]:
    """``count`` distinct links of one kind, each a custom 24 h window inside the data."""
    extra = KINDS[kind][1]
    out = []
    latest = t.last.replace(second=0, microsecond=0)
    for _ in range(count):
        if kind == "row":
            row_id, strategy, at = rng.choice(t.rows)
            around = at.replace(second=0, microsecond=0) - timedelta(minutes=rng.randint(0, 59))
            view = {"strategy": strategy, "window": "custom", "row": str(row_id),
                    "since": iso(around - timedelta(hours=6)), "until": iso(around + timedelta(hours=6))}  # fmt: skip
        else:
            until = latest - timedelta(minutes=rng.randint(0, 20 * 24 * 60))
            view = {"strategy": rng.choice(t.strategies), "window": "custom",
                    "since": iso(until - timedelta(hours=24)), "until": iso(until), **extra}  # fmt: skip
        out.append(urlencode(view))
    return out


async def one(ws: ClientConnection, pid: int, kind: str, query: str, cached: bool) -> Load:
    before = cpu_seconds(pid)
    shown = await open_page(ws, KINDS[kind][0], query, 120.0)
    cpu = 1000 * (cpu_seconds(pid) - before)  # whole process, exited threads too (10 ms ticks)
    if shown.errors or shown.banners:
        raise SystemExit(f"{kind}?{query}: {(shown.errors + shown.banners)[:3]}")
    return Load(kind, cached, 1000 * shown.seconds, cpu)


def stream_of(base: str) -> str:
    return base.replace("http://", "ws://") + "/_stcore/stream"


async def loads(
    base: str, pid: int, t: Targets, count: int, seed: int, kinds: tuple[str, ...] = tuple(KINDS)
) -> list[Load]:
    """Each kind: ``count`` uncached loads (fresh links), then each link again (cached)."""
    rng = random.Random(seed)
    done: list[Load] = []
    async with connect(stream_of(base), subprotocols=["streamlit"], max_size=None) as ws:
        for kind in kinds:
            links = queries(kind, t, rng, count)
            for query in links:
                done.append(await one(ws, pid, kind, query, cached=False))
            for query in links:
                done.append(await one(ws, pid, kind, query, cached=True))
    return done


async def sampled(base: str, pid: int, t: Targets, count: int, tmp: Path) -> dict[str, Samples]:
    """Pass 2: per kind, one py-spy recording of ``count`` uncached loads and one of the same
    links again (cached); keys like ``overview uncached``."""
    rng = random.Random(2)
    found: dict[str, Samples] = {}
    async with connect(stream_of(base), subprotocols=["streamlit"], max_size=None) as ws:
        for kind in KINDS:
            links = queries(kind, t, rng, count)
            for cached in (False, True):
                raw = tmp / f"stacks-{kind}-{cached}.txt"
                with py_spy(pid, raw):
                    for query in links:
                        await one(ws, pid, kind, query, cached=cached)
                found[f"{kind} {'cached' if cached else 'uncached'}"] = breakdown(raw)
    return found


def layer_of(stack: list[str]) -> str:
    for name, marks in LAYERS:
        if any(m in frame for frame in stack for m in marks):
            return name
    return "other"


@dataclass
class Samples:
    """py-spy's samples of one page kind, by layer; the leaf frames; who called jsonschema."""

    layers: collections.Counter[str]
    leaves: collections.Counter[str]
    validating: collections.Counter[str]
    total: int
    ours: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


def breakdown(raw: Path) -> Samples:
    found = Samples(collections.Counter(), collections.Counter(), collections.Counter(), 0)
    for line in raw.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = stack_text.split(";")
        found.total += count
        layer = layer_of(stack)
        found.layers[layer] += count
        found.leaves[stack[-1][:110]] += count
        mine = [f for f in stack if "stratlog/" in f or "/pages/" in f]
        if mine:  # the innermost frame of ours: which of our lines the time is spent under
            found.ours[mine[-1][:110]] += count
        if layer.startswith("jsonschema"):  # the innermost frame of ours above it
            ours = [f for f in stack if "stratlog/" in f or "/pages/" in f]
            found.validating[(ours[-1] if ours else stack[0])[:110]] += count
    return found


def breakdown_lines(per_kind: dict[str, Samples], top: int) -> list[str]:
    lines = []
    names = [name for name, _ in LAYERS] + ["other"]
    for state in ("uncached", "cached"):
        kinds = [k for k in per_kind if k.endswith(f" {state}")]
        heads = "".join(f"{k.removesuffix(' ' + state):>18}" for k in kinds)
        lines.append(f"{'layer, ' + state + ' (share of samples)':<52}{heads}")
        for name in names:
            cells = "".join(
                f"{100 * per_kind[k].layers[name] / max(per_kind[k].total, 1):>17.1f}%"
                for k in kinds
            )
            lines.append(f"{name:<52}{cells}")
        lines.append(f"{'samples':<52}" + "".join(f"{per_kind[k].total:>18,}" for k in kinds))
    every = sum((s.leaves for s in per_kind.values()), collections.Counter())
    total = sum(s.total for s in per_kind.values())
    lines.append("hottest leaf frames, every kind")
    for frame, count in every.most_common(top):
        lines.append(f"  {100 * count / max(total, 1):5.1f} %  {frame}")
    for kind in ("overview uncached", "overview cached"):
        if kind in per_kind:
            lines.append(f"{kind}: the innermost frame of ours (stratlog/, pages/) per sample")
            for frame, count in per_kind[kind].ours.most_common(12):
                lines.append(f"  {100 * count / max(per_kind[kind].total, 1):5.1f} %  {frame}")
    callers = sum((s.validating for s in per_kind.values()), collections.Counter())
    if callers:
        lines.append("jsonschema validation, by the innermost frame of ours that led to it")
        for frame, count in callers.most_common(8):
            lines.append(f"  {100 * count / max(total, 1):5.1f} %  {frame}")
    return lines


def figures(done: list[Load]) -> list[str]:
    lines = [
        f"{'page':<18}{'':<10}{'CPU ms median (min-max)':>28}{'mean':>8}{'wall ms median':>18}"
    ]
    for kind in KINDS:
        for cached in (False, True):
            got = [d for d in done if d.kind == kind and d.cached is cached]
            cpu = [d.cpu_ms for d in got]
            wall = statistics.median(d.wall_ms for d in got)
            lines.append(
                f"{kind:<18}{'cached' if cached else 'uncached':<10}"
                f"{statistics.median(cpu):>14.0f} ({min(cpu):.0f}-{max(cpu):.0f}){'':>4}"
                f"{statistics.mean(cpu):>8.1f}{wall:>14.0f}"
            )
    return lines


@contextlib.contextmanager
def py_spy(pid: int, out: Path) -> Iterator[None]:
    """``py-spy record`` attached to ``pid`` until the block ends (raw collapsed stacks)."""
    spy = ROOT / ".venv" / "bin" / "py-spy"
    command = [str(spy), "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
               "--output", str(out), "--nonblocking"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # attached
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        if not out.exists():
            raise SystemExit(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}")


async def run(args: argparse.Namespace) -> int:
    source = (
        given_database(args.database_url, args.admin_url)
        if args.database_url
        else own_database(args.rows)
    )
    async with source as db:
        db_: Database = db
        log(db_.note)
        admin = make_engine(db_.admin_url, pool_size=1)
        try:
            found = await targets(admin)
        finally:
            await admin.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            logfile = Path(tmp) / "streamlit.log"
            with dashboard(db_.dashboard_url, 5, logfile) as (process, base):
                await loads(base, process.pid, found, 2, seed=-1)  # imports, first connections
                log("  pass 1: CPU per page...")
                done = await loads(base, process.pid, found, args.loads, seed=1)
                log("  pass 2: py-spy, one recording per page kind and cache state...")
                per_kind = await sampled(base, process.pid, found, args.loads, Path(tmp))
            tracebacks = logfile.read_text(errors="replace").count("Traceback")
    print(f"database   {db_.note}")
    print(f"loads      {args.loads} uncached + {args.loads} cached per page kind, one client; "
          f"CPU: the dashboard process (/proc/PID/stat)")  # fmt: skip
    print("\n".join(figures(done)))
    print(f"\nbreakdown  py-spy at 250 Hz, {args.loads} loads per kind and cache state")
    print("\n".join(breakdown_lines(per_kind, args.top)))
    print(f"tracebacks in the dashboard's log: {tracebacks}")
    return 1 if tracebacks else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000, help="demo rows (own database)")
    parser.add_argument("--loads", type=int, default=12, help="loads per kind and cache state")
    parser.add_argument("--top", type=int, default=25, help="hottest frames to print")
    parser.add_argument("--database-url", help="an existing PostgreSQL (default: start one)")
    parser.add_argument("--admin-url", help="for reading the targets (default: --database-url)")
    args = parser.parse_args()
    if args.loads < 1:
        parser.error("--loads must be positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
