"""Page load in Chromium against the floor (issue 17): the Overview beside an empty Streamlit app.

    .venv/bin/python -m bench.bench_pageload [--database URL] [--loads 8] [--chromium PATH]

Two servers side by side, started the same way (``streamlit run`` on 127.0.0.1 with the
production settings of docs/operating.md, no chart-schema validation): the dashboard on the demo
file (``make demo``; or ``--database``), and an app whose script is one ``st.title`` (the floor no
Streamlit page can beat: the same frontend, websocket and script run, with nothing to draw).
Chromium loads them alternately, a fresh browser profile (empty HTTP cache, no cookies) for each
load, ``--loads`` times each after one warm-up load of each:

- the Overview of the busiest strategy's last 24 h, the same link every time (its data and chart
  specs cached on the server after the warm-up: what the second operator to open an incident
  link sees), and the Overview of a different 24 h window each time (nothing cached);
- two moments per load: script-state ``notRunning`` and every panel drawn (each chart's marks,
  the table grids, the 12 figures, the sidebar's picker; bench/bench_dashboard.py); the floor
  has only the first.

A third app draws one metric, one three-bar chart and one three-row table: no page with a chart
and a table can load faster, since it pays for Vega's and the data grid's scripts, which the
empty app never loads. It prints median, min-max and the ratio of the medians to the floor's.
Target: within 1.25x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_dashboard import CHARTS, PANELS_DRAWN, VIEWPORT, busiest_window  # noqa: E402
from bench.load_dashboard import dashboard  # noqa: E402
from stratlog.config import load_settings, redact_url  # noqa: E402
from stratlog.db import sqlite_path  # noqa: E402
from stratlog.export import VALIDATE_SPECS_ENV  # noqa: E402
from stratlog.ui.state import iso_utc  # noqa: E402
from tests.browser.chromium import CHROMIUM_ARGS, READY  # noqa: E402

TARGET_RATIO = 1.25
EMPTY_APP = 'import streamlit as st\n\nst.title("Overview")\n'
#: A second reference: the least a page with a chart and a table can be (one metric, one
#: three-bar Vega-Lite chart, one three-row grid). Its load pays for Vega's and the data grid's
#: scripts, which the empty app never loads and every Overview must.
ONE_CHART_APP = """import streamlit as st

st.title("Overview")
st.metric("Runs", "1,234")
st.vega_lite_chart(
    {"data": {"values": [{"a": "x", "n": 3}, {"a": "y", "n": 5}, {"a": "z", "n": 2}]},
     "mark": "bar", "encoding": {"x": {"field": "a", "type": "nominal"},
                                 "y": {"field": "n", "type": "quantitative"}}},
    use_container_width=True,
)
st.dataframe({"code": ["E1", "E2", "E3"], "runs": [3, 5, 2]})
"""
ONE_CHART_DRAWN = """() => {
    const chart = document.querySelector('[data-testid="stVegaLiteChart"] svg.marks, '
        + '[data-testid="stVegaLiteChart"] canvas.marks');
    const grid = document.querySelector('[data-testid="stDataFrame"] canvas');
    return chart !== null && grid !== null;
}"""


def load(
    browser: Any, address: str, *, panels: bool, drawn: str | None = None
) -> tuple[float, float]:
    """One fresh-profile load: ms to ``notRunning``, and to every panel drawn (the Overview's,
    or the ``drawn`` predicate's; else the same)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(address)
        expect(page.locator("h1").filter(has_text="Overview")).to_be_visible(timeout=60_000)
        page.wait_for_selector(READY, timeout=60_000)
        idle = 1000 * (time.perf_counter() - started)
        if panels:
            page.wait_for_function(PANELS_DRAWN, arg=CHARTS, timeout=60_000)
        elif drawn is not None:
            page.wait_for_function(drawn, timeout=60_000)
        return idle, 1000 * (time.perf_counter() - started)
    finally:
        context.close()


def line(name: str, values: list[float], floor: float | None) -> str:
    median = statistics.median(values)
    text = f"{name:<58} median {median:7.0f} ms ({min(values):.0f}-{max(values):.0f})"
    if floor is not None:
        ratio = median / floor
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        text += f"   {ratio:.2f}x the floor (target <= {TARGET_RATIO:g}x: {verdict})"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", default=load_settings().database_url)
    parser.add_argument("--loads", type=int, default=8)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    os.environ.pop(VALIDATE_SPECS_ENV, None)  # production: tests/conftest.py (imported) sets it
    path = sqlite_path(args.database)
    if path is not None and not path.exists():
        print(f"{path} does not exist: create it with `make demo` (200,000 demo rows)")
        return 2
    from playwright.sync_api import sync_playwright

    strategy, since, until = busiest_window(args.database)
    same = f"?strategy={strategy}&window=custom&since={iso_utc(since)}&until={iso_utc(until)}"
    windows = [  # a different 24 h window each load: nothing cached
        f"?strategy={strategy}&window=custom&since={iso_utc(since - timedelta(hours=h + 24))}"
        f"&until={iso_utc(until - timedelta(hours=h))}"
        for h in range(1, args.loads + 2)
    ]
    print(f"database {redact_url(args.database)}: {strategy}, 24 h windows; machine: "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    floor, charted, cached, fresh = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as driver:
        empty = Path(tmp) / "empty_app.py"
        empty.write_text(EMPTY_APP)
        one_chart = Path(tmp) / "one_chart_app.py"
        one_chart.write_text(ONE_CHART_APP)
        browser = driver.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            with (
                dashboard(args.database, 5, Path(tmp) / "dash.log") as (_, dash),
                dashboard(args.database, 5, Path(tmp) / "empty.log", empty) as (_, bare),
                dashboard(args.database, 5, Path(tmp) / "one.log", one_chart) as (_, one),
            ):
                load(browser, f"{dash}/{same}", panels=True)  # warm-up: imports, the cache
                load(browser, f"{dash}/{windows[-1]}", panels=True)
                load(browser, bare, panels=False)
                load(browser, one, panels=False, drawn=ONE_CHART_DRAWN)
                for i in range(args.loads):
                    floor.append(load(browser, bare, panels=False)[0])
                    charted.append(load(browser, one, panels=False, drawn=ONE_CHART_DRAWN))
                    cached.append(load(browser, f"{dash}/{same}", panels=True))
                    fresh.append(load(browser, f"{dash}/{windows[i]}", panels=True))
        finally:
            browser.close()
    base = statistics.median(floor)
    print(f"fresh browser profile per load, {args.loads} loads each, alternating")
    print(line("empty Streamlit app (one st.title): notRunning (the floor)", floor, None))
    print(line("one metric, chart and table: notRunning", [a for a, _ in charted], base))
    print(line("one metric, chart and table: all drawn", [b for _, b in charted], base))
    for name, loads in (("same link (server cache warm)", cached), ("a new window each load",
                                                                     fresh)):  # fmt: skip
        print(line(f"Overview, {name}: notRunning", [a for a, _ in loads], base))
        print(line(f"Overview, {name}: every panel drawn", [b for _, b in loads], base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
