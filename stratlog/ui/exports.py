"""Download buttons and the shareable link: chart PNGs, table CSVs, the incident snapshot zip.

Every file is made when the operator clicks (Streamlit's deferred downloads: the button holds a
callable, run on click in a worker thread), so a page load renders no PNG and builds no zip.
The bytes come from :mod:`stratlog.export` and :mod:`stratlog.report`, the same functions the
command line uses, so a dashboard PNG and a ``stratlog snapshot`` PNG are the same picture.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from stratlog import charts, export, report
from stratlog.service.compare import Comparison
from stratlog.service.insights import Insights
from stratlog.service.overview import Overview
from stratlog.service.versions import Versions
from stratlog.ui import nav
from stratlog.ui.context import fingerprint
from stratlog.ui.state import View

if TYPE_CHECKING:
    import pandas as pd

#: Heading and width (CSS pixels) of each exported chart: the snapshot's, so both look alike.
CHART_EXPORTS: dict[str, tuple[str, int]] = {
    stem: (heading, width) for stem, heading, width in report.CHARTS
}
PNG_HELP = "The chart as a PNG for incident documents: titled with strategy, UTC window and time."
CSV_HELP = "The table as CSV (raw values, UTC times), for spreadsheets or pandas."
#: Overview panels whose CSV is the snapshot's table of that name (``report.tables``).
SNAPSHOT_TABLES = ("status", "timeseries", "error_codes", "cases")
#: Shown tables that are snapshot tables too: their headers on the page -> the snapshot's. Their
#: downloads carry the snapshot's headers, so one table reads the same in every file.
SHOWN_HEADERS: dict[str, dict[str, str]] = {
    "error_codes": {
        "Error code": "errorCode",
        "Runs": "count",
        "Share of failures": "shareOfFailures",
        # With a comparison (the columns after the snapshot's own):
        "Baseline": "baseline",
        "Change": "change",
        "New": "new",
    },
}
#: The Duration panel's CSV: one row, the percentiles' columns with min, mean and max added.
DURATION_COLUMNS = ("figure", "p50", "p95", "p99", "min", "mean", "max", "sampled", "total",
                    "exact", "basis")  # fmt: skip


#: PNGs already rendered, by (the Overview's content key, chart name): operators who open the
#: same incident link and click the same button get the same bytes without a second render.
_PNGS: OrderedDict[tuple[bytes, str], bytes] = OrderedDict()
_PNGS_LOCK = threading.Lock()
PNG_CACHE_ENTRIES = 32


def chart_png(overview: Overview, name: str) -> bytes:
    """PNG bytes of one Overview chart (scale 2, white, fixed status colours, titled); only
    that chart is built, and the bytes are kept for the next click on the same result."""
    key = (fingerprint(overview), name)
    with _PNGS_LOCK:
        if key in _PNGS:
            _PNGS.move_to_end(key)
            return _PNGS[key]
    heading, width = CHART_EXPORTS[name]
    chart = charts.overview_charts(overview, selectable=False, only=(name,))[name]
    png = export.chart_png(
        charts.style(chart),
        strategy=overview.strategyId,
        since=overview.since,
        until=overview.until,
        heading=heading,
        width=width,
    )
    with _PNGS_LOCK:
        _PNGS[key] = png
        while len(_PNGS) > PNG_CACHE_ENTRIES:
            _PNGS.popitem(last=False)
    return png


def points_rows(overview: Overview) -> list[dict[str, Any]]:
    """The points histogram as rows: bin start, bin end (rounded as on the chart), runs."""
    bins = charts.rounded_bins(overview.pointsHistogram)
    return [{"start": b.start, "end": b.end, "count": b.count} for b in bins]


def duration_rows(overview: Overview) -> list[dict[str, Any]]:
    """The Duration panel as one row: p50 / p95 / p99, min / mean / max (ms) and their basis."""
    s = overview.summary
    row = report.percentile_rows(overview)[0]  # the duration row; points have their own panel
    extremes = {"min": s["minDurationMs"], "mean": s["avgDurationMs"], "max": s["maxDurationMs"]}
    return [{**row, **extremes}]


def overview_csv(overview: Overview, name: str) -> bytes:
    """CSV bytes of an Overview panel's data (its snapshot table where it has one, raw values)."""
    if name in SNAPSHOT_TABLES:
        return export.csv_bytes(report.tables(overview)[name], report.COLUMNS[name])
    if name == "points":
        return export.csv_bytes(points_rows(overview), ("start", "end", "count"))
    if name == "durations":
        return export.csv_bytes(duration_rows(overview), DURATION_COLUMNS)
    raise KeyError(name)


def shown_csv(
    frame: pd.DataFrame | Sequence[Mapping[str, Any]],
    kind: str,
    columns: Sequence[str] | None = None,
) -> bytes:
    """CSV bytes of a shown table; one that is a snapshot table too gets the snapshot's headers."""
    headers = SHOWN_HEADERS.get(kind)
    if headers is None:
        return export.csv_bytes(frame, columns)
    import pandas as pd  # only this download needs it

    renamed = pd.DataFrame(frame).rename(columns=headers)
    extra = [c for c in renamed.columns if c not in report.COLUMNS[kind]]
    return export.csv_bytes(renamed, [*report.COLUMNS[kind], *extra])


def _file(overview: Overview, kind: str, ext: str) -> str:
    return export.file_name(overview.strategyId, overview.since, overview.until, kind, ext)


def _download(label: str, data: Callable[[], bytes], name: str, mime: str, **kw: Any) -> None:
    st.download_button(
        label, data, file_name=name, mime=mime, on_click="ignore", type="tertiary", **kw
    )


def png_button(overview: Overview, name: str) -> None:
    """A "PNG" download of an Overview chart, rendered only when clicked."""
    _download(
        "PNG",
        lambda: chart_png(overview, name),
        _file(overview, name, "png"),
        "image/png",
        key=f"png_{name}",
        icon=":material/image:",
        help=PNG_HELP,
    )


def csv_button(data: Callable[[], bytes], name: str, key: str, help_text: str = CSV_HELP) -> None:
    """A "CSV" download whose bytes are made when clicked."""
    _download("CSV", data, name, "text/csv", key=key, icon=":material/table:", help=help_text)


def overview_csv_button(overview: Overview, name: str) -> None:
    """A "CSV" download of an Overview panel's data."""
    csv_button(lambda: overview_csv(overview, name), _file(overview, name, "csv"), f"csv_{name}")


def frame_csv_button(
    frame: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    strategy: str,
    since: datetime,
    until: datetime,
    kind: str,
    columns: Sequence[str] | None = None,
) -> None:
    """A "CSV" download of exactly the rows given (a shown table, the runbook)."""
    name = export.file_name(strategy, since, until, kind, "csv")
    csv_button(lambda: shown_csv(frame, kind, columns), name, f"csv_{kind}")


def versions_csv_button(versions: Versions) -> None:
    """The Versions table as CSV: the snapshot's ``versions.csv`` (raw values, ISO times)."""
    name = export.file_name(versions.strategyId, versions.since, versions.until, "versions", "csv")
    csv_button(
        lambda: export.csv_bytes(report.version_rows(versions), report.VERSION_CSV_COLUMNS),
        name,
        "csv_versions",
    )


def overview_link(overview: Overview, comparison: Comparison | None = None) -> str:
    """The dashboard's link to the Overview of a strategy and window (the window pinned), its
    version and its baseline (none without a comparison)."""
    view = View(
        since=overview.since, until=overview.until, strategy=overview.strategyId,
        version=overview.version,
        compare=None if comparison is None else comparison.baseline.text,
    )  # fmt: skip
    return share_url(view, nav.OVERVIEW.url_path)


def dashboard_snapshot(
    overview: Overview,
    link: str | None,
    comparison: Comparison | None = None,
    versions: Versions | None = None,
    insights: Callable[[], Insights | None] | None = None,
) -> bytes:
    """The snapshot zip as the dashboard makes it: it says so and links back to the view;
    ``insights`` fetches the window's findings when the zip is built."""
    return report.snapshot_zip(
        overview, source=report.DASHBOARD, link=link, comparison=comparison, versions=versions,
        insights=insights() if insights is not None else None,
    )  # fmt: skip


def snapshot_button(
    overview: Overview,
    comparison: Comparison | None = None,
    versions: Versions | None = None,
    insights: Callable[[], Insights | None] | None = None,
) -> None:
    """The incident snapshot (Markdown, 6 PNGs, 6 CSVs in one zip), built when clicked; with
    the page's comparison, what changed against the baseline too, and the versions table; with
    ``insights``, the findings (fetched when clicked)."""
    # Now: the click runs in a thread without the page's URL.
    link = overview_link(overview, comparison)
    st.download_button(
        "Incident snapshot (zip)",
        lambda: dashboard_snapshot(overview, link, comparison, versions, insights),
        file_name=report.default_name(overview) + ".zip",
        mime="application/zip",
        on_click="ignore",
        key="snapshot_zip",
        icon=":material/folder_zip:",
        help=(
            "Everything on this page for the incident document: snapshot.md with the figures "
            "and tables, every chart as PNG, every table as CSV (takes a few seconds)."
        ),
        disabled=overview.total == 0,
    )


def share_url(view: View, page_path: str) -> str:
    """The absolute link of this view (the page's URL as the browser sees it, else a path).

    The window is written as what it is in the link, an absolute custom window: opened later it
    shows these runs, not the last hours before that moment.
    """
    scheme, host, path, _, _ = urlsplit(st.context.url or f"/{page_path}")
    pinned = view.replace(preset=None).params()
    return urlunsplit((scheme, host, path or "/", urlencode(pinned), ""))


def copy_link(view: View, page_path: str) -> None:
    """A "Copy link" popover: the URL with absolute UTC bounds that reproduces this view."""
    hint = (
        "A link to exactly this view: the window is pinned to absolute UTC bounds, so it "
        "shows the same runs tomorrow. Copy it with the icon of the box."
    )
    with st.popover("Copy link", icon=":material/link:", type="tertiary", help=hint):
        st.code(share_url(view, page_path), language=None, wrap_lines=True, width=520)
