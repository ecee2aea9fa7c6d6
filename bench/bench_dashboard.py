"""Dashboard speed (issue 3): Overview data for a 24 h window cold and warm, and a page load.

    .venv/bin/python bench/bench_dashboard.py [--database URL] [--runs N] [--no-browser]

Default database: STRATLOG_DATABASE_URL, else the embedded ``stratlog.db`` (``make demo``
writes 200,000 demo rows there). The window is the 24 h that end with the busiest strategy's
newest row, so an old demo file still has data in it.

- cold: a fresh engine (new event-loop thread, no pooled connection) and an empty result cache,
  then the one Overview service call the page makes;
- warm: the same call through the page's ``st.cache_data`` loader once it holds the result;
- runbook: one page of runs (``list_runs`` with the window's codes, cases and counts), the
  newest page and a page far back (keyset paging after the 1,000th run);
- frontend files: every static file a first page load fetches, over 6 keep-alive connections,
  from this server (on uvloop) and from one kept on the standard library's asyncio loop;
- page load: Chromium opens the Overview URL. Two figures per load: until the app reports
  script-state ``notRunning`` (the issue's measure), and until every panel is drawn (the 12
  figures, every chart's marks, the error-code table's grid and the sidebar's strategy picker),
  which is what an operator waits for. Fresh browser profile (empty HTTP cache) and warm.

Targets: cold < 150 ms, warm < 20 ms, page load < 2 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stratlog.config import load_settings, redact_url  # noqa: E402
from stratlog.db import make_session_factory, sqlite_path  # noqa: E402
from stratlog.repository.strategy_execution_log_repository import (  # noqa: E402
    StrategyExecutionLogRepository,
)
from stratlog.service.overview import fetch_overview  # noqa: E402
from stratlog.service.runbook import RunbookQuery, fetch_runbook  # noqa: E402
from stratlog.ui.bridge import Backend  # noqa: E402
from stratlog.ui.state import ceil_minute, iso_utc  # noqa: E402
from tests.browser.chromium import CHROMIUM_ARGS, READY  # noqa: E402
from tests.net import free_port  # noqa: E402

TARGETS_MS = {"cold": 150.0, "warm": 20.0, "page": 2000.0}
VIEWPORT = {"width": 1440, "height": 1000}
#: Charts on the Overview (status, time series, cases, durations, points).
CHARTS = 5
#: True once the Overview has drawn everything: every chart its marks, the error-code table its
#: grid, the sidebar its strategy picker.
PANELS_DRAWN = """charts => {
    const drawn = (testid, marks) => [...document.querySelectorAll(`[data-testid="${testid}"]`)]
        .map(element => element.querySelector(marks) !== null);
    const plots = drawn("stVegaLiteChart", "svg.marks, canvas.marks");
    const grids = drawn("stDataFrame", "canvas");
    return plots.length >= charts && plots.every(Boolean) && grids.length >= 1
        && grids.every(Boolean) && document.querySelectorAll('[data-testid="stMetricValue"]').length >= 12
        && document.querySelector('[data-testid="stSidebar"] [data-testid="stSelectbox"] input') !== null;
}"""


def ms(seconds: float) -> float:
    """Seconds to milliseconds."""
    return seconds * 1000.0


def timed(action: Callable[[], Any]) -> float:
    """Milliseconds one call takes."""
    started = time.perf_counter()
    action()
    return ms(time.perf_counter() - started)


def report(name: str, samples: list[float], target: str | None = None) -> None:
    """One line: median, p95 / max and the verdict against the target."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    line = (
        f"{name:<46} median {statistics.median(ordered):8.1f} ms   p95 {p95:8.1f} ms   "
        f"max {ordered[-1]:8.1f} ms   n={len(ordered)}"
    )
    if target is not None:
        limit = TARGETS_MS[target]
        verdict = "ok" if statistics.median(ordered) < limit else "OVER TARGET"
        line += f"   (target < {limit:g} ms: {verdict})"
    print(line, flush=True)


def busiest_window(url: str) -> tuple[str, datetime, datetime]:
    """The strategy with the most rows and the 24 h ending with its newest row."""
    backend = Backend(url)
    try:
        strategies = backend.run(backend.repository.list_strategies())
    finally:
        backend.close()
    if not strategies:
        raise SystemExit(f"no rows in {redact_url(url)}: run `make demo` first")
    top = max(strategies, key=lambda s: s["count"])
    until = ceil_minute(top["lastCreatedAt"])
    return top["strategyId"], until - timedelta(hours=24), until


def bench_cold(url: str, strategy: str, since: datetime, until: datetime, runs: int) -> None:
    """A fresh Backend (loop thread + engine) per run, then the Overview call."""
    starts, fetches, raw = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        backend = Backend(url, migrate=False)
        starts.append(ms(time.perf_counter() - started))
        try:
            fetches.append(
                timed(lambda b=backend: overview(b, b.repository, strategy, since, until))
            )
        finally:
            backend.close()
        backend = Backend(url, migrate=False)
        try:
            plain = StrategyExecutionLogRepository(
                make_session_factory(backend.engine), use_rollups=False
            )
            raw.append(timed(lambda b=backend, r=plain: overview(b, r, strategy, since, until)))
        finally:
            backend.close()
    report("backend start (loop thread + engine)", starts)
    report("overview 24 h, cold (fresh engine, no cache)", fetches, "cold")
    report("  same, audit rows only (use_rollups=False)", raw, "cold")


def overview(
    backend: Backend, repository: Any, strategy: str, since: datetime, until: datetime
) -> Any:
    """The Overview service call on the backend's loop."""
    return backend.run(fetch_overview(repository, strategy, since, until))


def bench_app_loader(url: str, strategy: str, since: datetime, until: datetime, runs: int) -> None:
    """The page's own cached loader: first call (backend start + schema check) and warm calls."""
    for name in ("streamlit", "streamlit.runtime.caching.cache_data_api"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import streamlit as st

    from stratlog.ui import context

    args = (url, strategy, iso_utc(since), iso_utc(until))
    st.cache_resource.clear()
    first = timed(lambda: context._overview(*args))
    report("overview 24 h via the app, first call (+ schema check)", [first])
    warm = [timed(lambda: context._overview(*args)) for _ in range(runs)]
    report("overview 24 h via the app, warm (cached)", warm, "warm")
    st.cache_data.clear()
    st.cache_resource.clear()


def bench_runbook(url: str, strategy: str, since: datetime, until: datetime, runs: int) -> None:
    """A runbook page (50 runs, the window's pickers and counts): the newest, and one far back."""
    backend = Backend(url, migrate=False)
    try:
        first = RunbookQuery(strategy, since, until, limit=50)
        newest = [timed(lambda: backend.run(fetch_runbook(backend.repository, first)))]
        newest += [
            timed(lambda: backend.run(fetch_runbook(backend.repository, first)))
            for _ in range(runs)
        ]
        report("runbook 24 h, newest 50 runs", newest)
        deep = backend.run(
            backend.repository.list_runs(
                strategyId=strategy, sinceDt=since, untilDt=until, limit=200
            )
        )
        for _ in range(4):  # walk back to about the 1,000th run of the window
            if len(deep) < 200:
                break
            last = deep[-1]
            deep = backend.run(
                backend.repository.list_runs(
                    strategyId=strategy,
                    sinceDt=since,
                    untilDt=until,
                    before=(last.createdAt, last.id),
                    limit=200,
                )
            )
        if deep:
            far = RunbookQuery(strategy, since, until, limit=50, before=deep[-1].id)
            samples = [
                timed(lambda: backend.run(fetch_runbook(backend.repository, far)))
                for _ in range(runs)
            ]
            report("runbook 24 h, 50 runs after the ~1,000th (before=)", samples)
    finally:
        backend.close()


#: ``python -c`` program: Streamlit on the standard library's asyncio loop even though uvloop is
#: installed (what it does without uvloop), the comparison baseline for the frontend files.
WITHOUT_UVLOOP = (
    "import sys, streamlit.web.bootstrap as boot;"
    "boot._get_uvloop_loop_factory = lambda: None;"
    "boot._try_install_uvloop = lambda: None;"
    "from streamlit.web.cli import main;"
    "sys.argv[0] = 'streamlit';"
    "main()"
)


@contextmanager
def dashboard_server(url: str, *, uvloop: bool = True) -> Iterator[str]:
    """``streamlit run dashboard.py`` on a free port; yields its base URL."""
    import urllib.request

    port = free_port()
    launcher = (
        [sys.executable, "-m", "streamlit"] if uvloop else [sys.executable, "-c", WITHOUT_UVLOOP]
    )
    command = [
        *launcher, "run", str(ROOT / "dashboard.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    env = {**os.environ, "STRATLOG_DATABASE_URL": url}
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def bench_page_load(url: str, path: str, runs: int, chromium: str) -> None:
    """Chromium loads the Overview URL: fresh profile each time, then one warm profile; then
    the same fresh-profile loads and the frontend files from a server on the stdlib loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            with dashboard_server(url) as base:
                address = f"{base}/{path}"
                first = load_once(browser.new_context(viewport=VIEWPORT), address)
                fresh = [
                    load_once(browser.new_context(viewport=VIEWPORT), address) for _ in range(runs)
                ]
                returning = browser.new_context(viewport=VIEWPORT)
                load_once(returning, address, close=False)  # fills the browser's HTTP cache
                warm = [load_once(returning, address, close=False) for _ in range(runs)]
                returning.close()
                files = page_files(browser, address)
                static = [timed(lambda: fetch_all(base, files)) for _ in range(runs)]
            with dashboard_server(url, uvloop=False) as baseline:
                address = f"{baseline}/{path}"
                load_once(browser.new_context(viewport=VIEWPORT), address)  # server warm-up
                plain = [
                    load_once(browser.new_context(viewport=VIEWPORT), address) for _ in range(runs)
                ]
                slow = [timed(lambda: fetch_all(baseline, files)) for _ in range(runs)]
        finally:
            browser.close()
    count = sum("/static/" in name for name in files)
    report(f"{count} frontend files, 6 keep-alive connections, uvloop", static)
    report(f"{count} frontend files, same, stdlib asyncio loop (baseline)", slow)
    report("page load, first after server start: notRunning", [first[0]])
    for name, loads in (
        ("fresh browser profile", fresh),
        ("browser cache warm", warm),
        ("fresh profile, stdlib asyncio loop (baseline)", plain),
    ):
        report(f"page load, {name}: notRunning", [idle for idle, _ in loads], "page")
        report(f"page load, {name}: every panel drawn", [drawn for _, drawn in loads])


def page_files(browser: Any, address: str) -> list[str]:
    """Every URL a fresh page load of ``address`` fetched."""
    page = browser.new_page()
    try:
        page.goto(address)
        page.wait_for_function(PANELS_DRAWN, arg=CHARTS, timeout=60_000)
        return list(page.evaluate("performance.getEntriesByType('resource').map(r => r.name)"))
    finally:
        page.close()


def fetch_all(base: str, names: list[str], connections: int = 6) -> None:
    """GET every frontend file a page load fetched, as a browser does: a few keep-alive
    connections side by side. Shows how fast the server hands out static files."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    server = urlsplit(base)
    paths = [urlsplit(name).path for name in names if "/static/" in name]

    def fetch(share: list[str]) -> None:
        connection = http.client.HTTPConnection(server.hostname or "127.0.0.1", server.port)
        try:
            for path in share:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: HTTP {response.status}")
        finally:
            connection.close()

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(fetch, [paths[i::connections] for i in range(connections)]))


def load_once(context: Any, address: str, *, close: bool = True) -> tuple[float, float]:
    """Milliseconds from navigation to script-state notRunning, and to every panel drawn."""
    from playwright.sync_api import expect

    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(address)
        expect(page.locator("h1").filter(has_text="Overview")).to_be_visible(timeout=60_000)
        page.wait_for_selector(READY)
        idle = ms(time.perf_counter() - started)
        page.wait_for_function(PANELS_DRAWN, arg=CHARTS, timeout=60_000)
        return idle, ms(time.perf_counter() - started)
    finally:
        page.close()
        if close:
            context.close()


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", default=load_settings().database_url)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium page load")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    path = sqlite_path(args.database)
    if path is not None and not path.exists():
        print(f"{path} does not exist: create it with `make demo` (200,000 demo rows)")
        return 2
    strategy, since, until = busiest_window(args.database)
    print(f"database {redact_url(args.database)}: {strategy}, {iso_utc(since)} → {iso_utc(until)}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    from streamlit.web import bootstrap

    loop = "uvloop" if bootstrap._get_uvloop_loop_factory() is not None else "asyncio"
    print(f"dashboard server's event loop: {loop}")
    bench_cold(args.database, strategy, since, until, args.runs)
    bench_app_loader(args.database, strategy, since, until, args.runs * 10)
    bench_runbook(args.database, strategy, since, until, args.runs)
    if not args.no_browser:
        query = f"?strategy={strategy}&window=24h&since={iso_utc(since)}&until={iso_utc(until)}"
        bench_page_load(args.database, query, min(args.runs, 10), args.chromium)
    return 0


if __name__ == "__main__":
    sys.exit(main())
