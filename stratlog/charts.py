"""Altair chart builders: plain data (or an ``Overview``) in, ``alt.Chart`` out; no Streamlit.

Each builder renders a sensible empty state ("no runs in this window") for empty input, uses the
fixed status colours of :mod:`stratlog.vocabulary` and shows times in UTC, so the same charts can be
rendered to PNG server-side (e.g. with ``chart.save("x.png")`` and vl-convert).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import altair as alt

from stratlog import vocabulary as fmt
from stratlog.service.overview import Overview
from stratlog.service.stats import HistogramBin, Percentiles
from stratlog.vocabulary import (
    ACCENT,
    ACCENT_LIGHT,
    FONT,
    GRID,
    MUTED,
    NO_RULE,
    STATUS_ORDER,
    TEXT,
    status_range,
)

#: Names of the selection parameters the Overview listens to (``event.selection.<name>``).
STATUS_SELECTION = "status_pick"
CASE_SELECTION = "case_pick"
EMPTY_MESSAGE = "no runs in this window"
#: Fill the container's width; ``height`` is the plot's own height (axes and legends extra).
FIT_WIDTH = {"type": "fit-x", "contains": "padding"}


#: An Altair chart (``alt.Chart`` or ``alt.LayerChart``); Altair's fluent API is untyped.
AltChart = Any


def _data(values: Sequence[Mapping[str, Any]]) -> AltChart:
    return alt.Data(values=[dict(v) for v in values])  # type: ignore[no-untyped-call]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def style(chart: AltChart) -> AltChart:
    """Shared look: quiet axes, no frame, the app's font (also for PNG export)."""
    return (
        chart.configure(font=FONT)
        .configure_view(strokeWidth=0)
        .configure_axis(
            labelColor=MUTED,
            titleColor=MUTED,
            gridColor=GRID,
            domainColor=GRID,
            tickColor=GRID,
            labelFontSize=11,
            titleFontSize=11,
            titleFontWeight="normal",
        )
        .configure_legend(labelColor=TEXT, titleColor=MUTED, labelFontSize=12)
    )


def empty(message: str = EMPTY_MESSAGE, height: int = 220) -> AltChart:
    """A blank panel that says why it is blank."""
    return (
        alt.Chart(_data([{"text": message}]))
        .mark_text(color=MUTED, fontSize=14)
        .encode(text="text:N")
        .properties(height=height, autosize=FIT_WIDTH)
    )


def _status_scale() -> alt.Scale:
    return alt.Scale(domain=list(STATUS_ORDER), range=status_range())


def _tooltips(*fields: tuple[str, str, str | None]) -> list[alt.Tooltip]:
    """Tooltips from (field:type, title, format) triples."""
    return [
        alt.Tooltip(field, title=title)
        if fmt_ is None
        else alt.Tooltip(field, title=title, format=fmt_)
        for field, title, fmt_ in fields
    ]


def _pickable(chart: Any, name: str, field: str, **options: Any) -> Any:
    """Add a click selection on ``field`` (dimming what is not picked)."""
    pick = alt.selection_point(name=name, fields=[field], on="click", **options)
    return chart.add_params(pick).encode(
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55))
    )


def _donut_center(total: int) -> list[Any]:
    """The total in the middle of the donut, and "runs" under it."""
    big = alt.Chart(_data([{"t": fmt.compact(total)}])).mark_text(
        fontSize=24, fontWeight="bold", color=TEXT, dy=-8
    )
    small = alt.Chart(_data([{"t": "runs"}])).mark_text(fontSize=12, color=MUTED, dy=14)
    return [big.encode(text="t:N"), small.encode(text="t:N")]


def _legend_labels(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Vega expression labelling each status with its count and share."""
    labels = {r["status"]: f"{r['status']}  {r['count']:,}  ({fmt.rate(r['share'])})" for r in rows}
    return "(" + repr(labels) + ")[datum.label] || datum.label"


def status_donut(rows: Sequence[Mapping[str, Any]], *, selectable: bool = True) -> AltChart:
    """Runs per status as a donut with the total in the middle; click a slice or legend entry.

    ``rows``: ``{"status", "count", "share"}`` per status (``Overview.status_rows()``).
    """
    total = sum(int(r["count"]) for r in rows)
    if total == 0:
        return empty(height=240)
    data = [{**r, "order": fmt.status_rank(r["status"])} for r in rows if r["count"]]
    legend = alt.Legend(title=None, orient="right", labelExpr=_legend_labels(rows), symbolSize=160)
    arc = (
        alt.Chart(_data(data))
        .mark_arc(innerRadius=62, outerRadius=104, stroke="#ffffff", strokeWidth=2)
        .encode(
            theta=alt.Theta("count:Q", stack=True),
            color=alt.Color("status:N", scale=_status_scale(), legend=legend),
            order=alt.Order("order:Q"),
            tooltip=_tooltips(
                ("status:N", "Status", None), ("count:Q", "Runs", ","), ("share:Q", "Share", ".2%")
            ),
        )
    )
    if selectable:
        arc = _pickable(arc, STATUS_SELECTION, "status", bind="legend")
    return alt.layer(arc, *_donut_center(total)).properties(height=240, autosize=FIT_WIDTH)


def _time_format(seconds: float) -> str:
    if seconds <= 2 * 86400:
        return "%H:%M"
    if seconds <= 14 * 86400:
        return "%a %d %H:%M"
    return "%b %d"


def _stacked(series: Sequence[Mapping[str, Any]], bucket_seconds: int) -> list[dict[str, Any]]:
    """One rectangle per bucket and status, stacked bottom-up in the fixed status order."""
    step = timedelta(seconds=bucket_seconds)
    size = fmt.duration_label(bucket_seconds)
    ordered = sorted(series, key=lambda i: (i["bucketStart"], fmt.status_rank(i["status"])))
    tops: dict[datetime, int] = {}
    rects = []
    for item in ordered:
        start, count = item["bucketStart"], int(item["count"])
        low = tops.get(start, 0)
        tops[start] = low + count
        rects.append(
            {
                "start": _iso(start),
                "end": _iso(start + step),
                "bucket": f"{fmt.utc(start, seconds=False)} + {size}",
                "status": item["status"],
                "count": count,
                "low": low,
                "high": low + count,
            }
        )
    return rects


def timeseries(
    series: Sequence[Mapping[str, Any]], bucket_seconds: int, since: datetime, until: datetime
) -> AltChart:
    """Runs per time bucket stacked by status, UTC axis; ``series`` as ``Overview.timeseries``."""
    if not series:
        return empty(height=240)
    axis = alt.Axis(format=_time_format((until - since).total_seconds()), grid=False)
    x_scale = alt.Scale(type="utc", domain=[_iso(since), _iso(until)])
    legend = alt.Legend(title=None, orient="top", direction="horizontal")
    return (
        alt.Chart(_data(_stacked(series, bucket_seconds)))
        .mark_rect(stroke="#ffffff", strokeWidth=0.3)
        .encode(
            x=alt.X("start:T", scale=x_scale, title="time (UTC)", axis=axis),
            x2="end:T",
            y=alt.Y("low:Q", title="runs per bucket", axis=alt.Axis(format="~s")),
            y2="high:Q",
            color=alt.Color("status:N", scale=_status_scale(), legend=legend),
            tooltip=_tooltips(
                ("bucket:N", "Bucket (UTC)", None),
                ("status:N", "Status", None),
                ("count:Q", "Runs", ","),
            ),
        )
        .properties(height=240, autosize=FIT_WIDTH)
    )


def _case_rows(cases: Sequence[Mapping[str, Any]], total: int) -> list[dict[str, Any]]:
    """Bar data: the URL value, a label (null → "no rule matched"), count, share and rank."""
    return [
        {
            "case": NO_RULE if c["caseName"] is None else c["caseName"],
            "label": fmt.clip(fmt.visible(fmt.case_label(c["caseName"])), 40),
            "count": int(c["count"]),
            "share": c["count"] / total if total else 0.0,
            "rank": i,
            "nomatch": c["caseName"] is None,
        }
        for i, c in enumerate(cases)
    ]


def case_bars(
    cases: Sequence[Mapping[str, Any]], total: int, *, selectable: bool = True
) -> AltChart:
    """Runs per rule case, largest first; the null case reads "no rule matched (defaultPoints)".

    ``cases``: ``{"caseName", "count"}`` of the ok runs (``Overview.caseNames``), ``total``
    the ok runs (shares are of them); the ``case`` field of a selected bar is the URL value
    (``__none__`` for the null case).
    """
    if not cases:
        return empty(height=240)
    data = _case_rows(cases, total)
    chart = (
        alt.Chart(_data(data))
        .mark_bar(cornerRadiusEnd=3, height={"band": 0.72})
        .encode(
            y=alt.Y(
                "label:N", sort=alt.SortField("rank"), title=None, axis=alt.Axis(labelLimit=240)
            ),
            x=alt.X("count:Q", title="runs", axis=alt.Axis(format="~s")),
            color=alt.condition("datum.nomatch", alt.value(ACCENT_LIGHT), alt.value(ACCENT)),
            tooltip=_tooltips(
                ("label:N", "Case", None),
                ("count:Q", "Runs", ","),
                ("share:Q", "Share of ok runs", ".1%"),
            ),
        )
        .properties(height=max(120, 30 * len(data)), autosize=FIT_WIDTH)
    )
    return _pickable(chart, CASE_SELECTION, "case") if selectable else chart


def points_histogram(bins: Sequence[HistogramBin]) -> AltChart:
    """Awarded points in equal-width bins (``Overview.pointsHistogram``)."""
    if not bins:
        return empty("no points awarded in this window", height=220)
    data = [
        {
            "start": b.start,
            "end": b.end if b.end > b.start else b.start + 1,
            "count": b.count,
            "range": f"{b.start:,.1f} – {b.end:,.1f}",
        }
        for b in bins
    ]
    return (
        alt.Chart(_data(data))
        .mark_bar(color=ACCENT, binSpacing=1)
        .encode(
            x=alt.X("start:Q", bin="binned", title="points awarded"),
            x2="end:Q",
            y=alt.Y("count:Q", title="runs", axis=alt.Axis(format="~s")),
            tooltip=_tooltips(("range:N", "Points", None), ("count:Q", "Runs", ",")),
        )
        .properties(height=220, autosize=FIT_WIDTH)
    )


#: Percentile ticks: name and colour (neutral shades; the status colours mean statuses only).
PERCENTILE_MARKS = (("p50", ACCENT), ("p95", "#7A8AA0"), ("p99", TEXT))


def _percentile_ticks(durations: Percentiles) -> Any:
    """One tick per percentile, coloured by name, with a legend."""
    values = {"p50": durations.p50, "p95": durations.p95, "p99": durations.p99}
    ticks = [
        {"name": name, "value": values[name], "text": f"{name} {fmt.ms(values[name])}"}
        for name, _ in PERCENTILE_MARKS
        if values[name] is not None
    ]
    scale = alt.Scale(
        domain=[n for n, _ in PERCENTILE_MARKS], range=[c for _, c in PERCENTILE_MARKS]
    )
    legend = alt.Legend(title=None, orient="top", direction="horizontal")
    return (
        alt.Chart(_data(ticks))
        .mark_tick(thickness=3, size=28)
        .encode(
            x="value:Q",
            color=alt.Color("name:N", scale=scale, legend=legend),
            tooltip=_tooltips(("text:N", "Percentile", None)),
        )
    )


def duration_strip(durations: Percentiles, summary: Mapping[str, Any]) -> AltChart:
    """min–max range with ticks at p50 / p95 / p99 and a diamond at the mean (milliseconds)."""
    low, high = summary.get("minDurationMs"), summary.get("maxDurationMs")
    if durations.p50 is None or low is None or high is None:
        return empty(height=44)
    span = alt.Chart(_data([{"min": low, "max": high, "avg": summary.get("avgDurationMs")}]))
    axis = alt.Axis(grid=False, tickCount=6)
    x = alt.X("min:Q", title="duration (ms, log scale)", scale=alt.Scale(type="symlog"), axis=axis)
    rule = span.mark_rule(color=ACCENT_LIGHT, strokeWidth=6, strokeCap="round").encode(
        x=x,
        x2="max:Q",
        tooltip=_tooltips(("min:Q", "min (ms)", ",.2f"), ("max:Q", "max (ms)", ",.2f")),
    )
    mean = span.mark_point(shape="diamond", size=90, filled=True, color=TEXT).encode(
        x="avg:Q", tooltip=_tooltips(("avg:Q", "mean (ms)", ",.2f"))
    )
    chart = alt.layer(rule, mean, _percentile_ticks(durations))
    return chart.properties(height=44, autosize=FIT_WIDTH)


def error_code_bars(codes: Sequence[Mapping[str, Any]], failures: int) -> AltChart:
    """Top error codes as bars (the table's picture, for PNG export)."""
    if not codes:
        return empty("no failures in this window", height=200)
    data = [
        {
            "code": fmt.visible(c["errorCode"]),
            "count": int(c["count"]),
            "share": c["count"] / failures if failures else 0.0,
            "rank": i,
        }
        for i, c in enumerate(codes)
    ]
    return (
        alt.Chart(_data(data))
        .mark_bar(color=ACCENT, cornerRadiusEnd=3)
        .encode(
            y=alt.Y(
                "code:N", sort=alt.SortField("rank"), title=None, axis=alt.Axis(labelLimit=240)
            ),
            x=alt.X("count:Q", title="runs", axis=alt.Axis(format="~s")),
            tooltip=_tooltips(
                ("code:N", "Error code", None),
                ("count:Q", "Runs", ","),
                ("share:Q", "Share of failures", ".1%"),
            ),
        )
        .properties(height=max(120, 28 * len(data)), autosize=FIT_WIDTH)
    )


def overview_charts(overview: Overview, *, selectable: bool = False) -> dict[str, AltChart]:
    """Every Overview chart by panel name (for PNG export: ``style(chart).save(...)``)."""
    return {
        "status": status_donut(overview.status_rows(), selectable=selectable),
        "timeseries": timeseries(
            overview.timeseries, overview.bucketSeconds, overview.since, overview.until
        ),
        "errors": error_code_bars(overview.errorCodes, overview.failures),
        "cases": case_bars(overview.caseNames, overview.ok, selectable=selectable),
        "durations": duration_strip(overview.durations, overview.summary),
        "points": points_histogram(overview.pointsHistogram),
    }
