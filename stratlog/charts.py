"""Altair chart builders: plain data (or an ``Overview``) in, ``alt.Chart`` out; no Streamlit.

Each builder renders a sensible empty state ("no runs in this window") for empty input, uses the
fixed status colours of :mod:`stratlog.vocabulary` and shows times in UTC, so the same charts can be
rendered to PNG server-side (e.g. with ``chart.save("x.png")`` and vl-convert).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

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
#: The timeseries' selections: a click on a bucket (its ``start`` / ``end``), a dragged range.
BUCKET_SELECTION = "bucket_pick"
ZOOM_SELECTION = "zoom"
VERSION_COLOR = "#B8560B"
EMPTY_MESSAGE = "no runs in this window"
#: Fill the container's width; ``height`` is the plot's own height (axes and legends extra).
FIT_WIDTH = {"type": "fit-x", "contains": "padding"}


#: An Altair chart (``alt.Chart`` or ``alt.LayerChart``); Altair's fluent API is untyped.
AltChart = Any


def _layered(*layers: AltChart, height: int, **options: Any) -> AltChart:
    """Layers at the container's width and ``height``, made in one constructor call: each of
    ``alt.layer()``, ``resolve_scale()`` and ``properties()`` deep-copies the whole chart
    (a third of the 24 h timeseries' build time, bench/profile_pages.py)."""
    return alt.LayerChart(layer=list(layers), height=height, autosize=FIT_WIDTH, **options)


class Rows:
    """A chart's inline rows, opaque to Altair until the spec is written.

    Altair deep-copies a chart, its data included, at every ``layer()``, ``properties()`` and
    ``resolve_scale()``, and once more in ``to_dict()``: for the 24 h timeseries that was
    ~95,000 copied objects and most of a page's server CPU (bench/profile_pages.py). Altair
    copies only lists, dicts and its own schema objects and writes anything with a ``to_dict``
    as that method returns, so these rows are copied never and written once, as they are (plain
    JSON values: the builders give times as ISO strings). Equal by identity: layers drawn from
    one ``Rows`` still share one dataset.
    """

    __slots__ = ("rows",)
    #: What makes Altair treat it as one of its "schema-like" values (``SchemaLike``).
    _schema: ClassVar[dict[str, str]] = {"type": "array"}

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def to_dict(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self.rows

    def __len__(self) -> int:
        return len(self.rows)


def _data(values: Sequence[Mapping[str, Any]]) -> AltChart:
    return alt.Data(values=Rows([dict(v) for v in values]))  # type: ignore[no-untyped-call]


@functools.cache
def _channel_class(name: str, value: bool) -> type | None:
    """Altair's class of encoding channel ``name`` (``x`` -> ``alt.X``, with ``value``
    ``alt.XValue``), or None for one Altair spells otherwise."""
    found = getattr(alt, name[:1].upper() + name[1:] + ("Value" if value else ""), None)
    return found if isinstance(found, type) and issubclass(found, alt.SchemaBase) else None


def _channel(name: str, given: Any) -> Any:
    if isinstance(given, list | tuple):
        return [_channel(name, item) for item in given]
    if isinstance(given, str | dict):
        cls = _channel_class(name, isinstance(given, dict) and "value" in given)
        if cls is not None:
            return cls(given) if isinstance(given, str) else cls(**given)
    return given


def _channels(**given: Any) -> dict[str, Any]:
    """``encode()``'s arguments as Altair channel objects. Given a shorthand (``"end:T"``) or a
    dict (``alt.value()``, ``alt.condition()``), ``encode()`` looks for the class with
    ``from_dict``, which hashes Altair's whole schema on every call (~5 ms each, half of the
    Overview's chart specs, bench/profile_pages.py); a channel object is taken as it is. The
    spec is the same (tests/test_charts.py)."""
    return {name: _channel(name, value) for name, value in given.items()}


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
        .encode(**_channels(text="text:N"))
        .properties(height=height, autosize=FIT_WIDTH)
    )


def _count_axis(highest: float, **options: Any) -> alt.Axis:
    """An axis of run counts up to ``highest``: whole-number ticks, printed as integers."""
    # "~s" printed "0k 0.2k" (Vega gives every tick the SI prefix of the largest one). With a
    # minimum step of 1 Vega still asks d3 for span + 1 ticks, and d3 answers 0, 0.5, 1 ... for
    # spans of 1 or 2: below 10 the axis asks for exactly one tick per run instead.
    ticks = max(1, math.ceil(highest)) if highest < 10 else alt.Undefined
    return alt.Axis(format=",d", tickMinStep=1, tickCount=ticks, **options)


def _highest(rows: Sequence[Mapping[str, Any]], field: str = "count") -> float:
    return max((float(r[field]) for r in rows), default=0.0)


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
        **_channels(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)))
    )


def _donut_center(total: int) -> list[Any]:
    """The total in the middle of the donut, and "runs" under it."""
    big = alt.Chart(_data([{"t": fmt.compact(total)}])).mark_text(
        fontSize=24, fontWeight="bold", color=TEXT, dy=-8
    )
    small = alt.Chart(_data([{"t": "runs"}])).mark_text(fontSize=12, color=MUTED, dy=14)
    return [big.encode(**_channels(text="t:N")), small.encode(**_channels(text="t:N"))]


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
            **_channels(
                theta=alt.Theta("count:Q", stack=True),
                color=alt.Color("status:N", scale=_status_scale(), legend=legend),
                order=alt.Order("order:Q"),
                tooltip=_tooltips(
                    ("status:N", "Status", None),
                    ("count:Q", "Runs", ","),
                    ("share:Q", "Share", ".2%"),
                ),
            )
        )
    )
    if selectable:
        arc = _pickable(arc, STATUS_SELECTION, "status", bind="legend")
    return _layered(arc, *_donut_center(total), height=240)


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


def bucket_totals(series: Sequence[Mapping[str, Any]]) -> dict[datetime, tuple[int, int]]:
    """(runs, runs not ok) per bucket start of an ``Overview.timeseries``."""
    totals: dict[datetime, tuple[int, int]] = {}
    for item in series:
        runs, failed = totals.get(item["bucketStart"], (0, 0))
        count = int(item["count"])
        totals[item["bucketStart"]] = (
            runs + count,
            failed + (count if item["status"] != "ok" else 0),
        )
    return dict(sorted(totals.items()))


#: The failure-rate line (near-black, solid, dotted with points) and the baseline (grey, dashed):
#: neither is a status colour, and they tell apart without colour.
RATE_COLOR = TEXT
BASELINE_COLOR = "#5B6675"
BASELINE_DASH = [5, 3]


def timeseries(
    series: Sequence[Mapping[str, Any]],
    bucket_seconds: int,
    since: datetime,
    until: datetime,
    *,
    baseline: Sequence[Mapping[str, Any]] | None = None,
    offset: timedelta = timedelta(0),
    marks: Sequence[tuple[str, datetime]] = (),
    selectable: bool = False,
) -> AltChart:
    """Runs per time bucket stacked by status, UTC axis; ``series`` as ``Overview.timeseries``.

    ``marks`` are (label, time): a labelled vertical rule each (deploy markers).
    ``selectable`` adds a click on a bucket (:data:`BUCKET_SELECTION`, fields ``start`` and
    ``end``) and a dragged time range (:data:`ZOOM_SELECTION`, over ``x``).

    A line on its own right-hand axis gives the failure rate (error + timeout + limit) per
    bucket, so that a spike shows even when ok runs dominate the bars. With ``baseline`` (the
    baseline Overview's timeseries) its runs per bucket are drawn dashed, moved forward by
    ``offset`` onto the current window.
    """
    if not series:
        return empty(height=240)
    axis = alt.Axis(format=_time_format((until - since).total_seconds()), grid=False)
    x_scale = alt.Scale(type="utc", domain=[_iso(since), _iso(until)])
    x = alt.X("start:T", scale=x_scale, title="time (UTC)", axis=axis)
    legend = alt.Legend(title=None, orient="top", direction="horizontal")
    rects = _stacked(series, bucket_seconds)
    step, size = timedelta(seconds=bucket_seconds), fmt.duration_label(bucket_seconds)
    before = [
        {"start": _iso(start + offset), "end": _iso(start + offset + step), "runs": runs,
         "bucket": f"{fmt.utc(start, seconds=False)} + {size}"}
        for start, (runs, _) in bucket_totals(baseline or []).items()
        if since < start + offset + step and start + offset < until  # partial buckets too
    ]  # fmt: skip
    if before:  # the baseline's runs in each bar's tooltip: the dashed line takes no pointer
        then = {b["start"]: b["runs"] for b in before}
        for rect in rects:
            rect["baselineRuns"] = then.get(rect["start"])
    highest = max(_highest(rects, "high"), _highest(before, "runs"))
    y_axis = _count_axis(highest)
    bars = (
        alt.Chart(_data(rects))
        .mark_rect(stroke="#ffffff", strokeWidth=0.3)
        .encode(**_channels(
            x=x,
            x2="end:T",
            y=alt.Y("low:Q", title="runs per bucket", axis=y_axis,
                    scale=alt.Scale(domain=[0, max(highest, 1.0)])),
            y2="high:Q",
            color=alt.Color("status:N", scale=_status_scale(), legend=legend),
            tooltip=_tooltips(
                ("bucket:N", "Bucket (UTC)", None),
                ("status:N", "Status", None),
                ("count:Q", "Runs", ","),
                *([("baselineRuns:Q", "Baseline runs (all statuses)", ",")] if before else []),
            ),
        ))
    )  # fmt: skip
    if selectable:
        bars = bars.add_params(
            alt.selection_point(name=BUCKET_SELECTION, fields=["start", "end"], on="click"),
            alt.selection_interval(name=ZOOM_SELECTION, encodings=["x"]),
        )
    counts = [bars]
    if before:  # no tooltip: Vega then draws the line without pointer events, so a click
        # where it crosses a bar still picks the bucket (the bar's tooltip gives its runs)
        counts.append(
            alt.Chart(_data(before))
            .mark_line(
                color=BASELINE_COLOR, strokeDash=BASELINE_DASH, strokeWidth=1.4,
                interpolate="step-after",
            )
            .encode(**_channels(
                x=x,
                y=alt.Y("runs:Q", scale=alt.Scale(domain=[0, max(highest, 1.0)]), axis=None),
            ))
        )  # fmt: skip
    rate = [
        {"start": _iso(start + step / 2), "rate": failed / runs if runs else 0.0,
         "bucket": f"{fmt.utc(start, seconds=False)} + {size}", "failed": failed}
        for start, (runs, failed) in bucket_totals(series).items()
    ]  # fmt: skip
    rate_line = (
        alt.Chart(_data(rate))
        .mark_line(color=RATE_COLOR, strokeWidth=1.6, point=alt.OverlayMarkDef(size=14))
        .encode(
            **_channels(
                x=x,
                y=alt.Y(
                    "rate:Q",
                    title="failure rate",
                    axis=alt.Axis(format=".0%", orient="right", titleColor=RATE_COLOR, grid=False),
                    scale=alt.Scale(domain=[0, max(0.05, _highest(rate, "rate"))]),
                ),
                tooltip=_tooltips(
                    ("bucket:N", "Bucket (UTC)", None),
                    ("rate:Q", "Failure rate", ".1%"),
                    ("failed:Q", "Runs not ok", ","),
                ),
            )
        )
    )
    layers = [alt.LayerChart(layer=counts), rate_line, *version_rules(marks, x_scale, since, until)]
    independent = alt.Resolve(scale=alt.ScaleResolveMap(y="independent"))
    return _layered(*layers, height=240, resolve=independent)


def version_rules(
    marks: Sequence[tuple[str, datetime]], scale: Any, since: datetime, until: datetime
) -> list[AltChart]:
    """A vertical rule at each of ``marks`` (label, time on this axis) inside the window,
    labelled: where a version was first seen."""
    data = [
        {"at": _iso(at), "version": fmt.clip(fmt.visible(label), 34), "seen": fmt.utc(at)}
        for label, at in marks
        if since <= at < until
    ]  # fmt: skip
    if not data:
        return []
    tips = _tooltips(("version:N", "Version first seen", None), ("seen:N", "At (UTC)", None))
    base = alt.Chart(_data(data)).encode(
        **_channels(x=alt.X("at:T", scale=scale, title=None), tooltip=tips)
    )
    rule = base.mark_rule(color=VERSION_COLOR, strokeWidth=1.5, strokeDash=[2, 2])
    label = base.mark_text(
        color=VERSION_COLOR, align="left", baseline="top", dx=3, dy=2, fontSize=11,
        fontWeight="bold",
    ).encode(**_channels(text="version:N", y=alt.value(0)))  # fmt: skip
    return [rule, label]


def duration_lines(
    points: Sequence[Any],
    since: datetime,
    until: datetime,
    bucket_seconds: int,
    *,
    baseline: Sequence[Any] = (),
    offset: timedelta = timedelta(0),
    marks: Sequence[tuple[str, datetime]] = (),
) -> AltChart:
    """p50 and p95 of the durations per bucket (``DurationPoint``s), the baseline's dashed and
    moved onto the window by ``offset``, and the version rules."""
    if not points:
        return empty(height=200)
    axis = alt.Axis(format=_time_format((until - since).total_seconds()), grid=False)
    x_scale = alt.Scale(type="utc", domain=[_iso(since), _iso(until)])
    x = alt.X("start:T", scale=x_scale, title="time (UTC)", axis=axis)
    size = fmt.duration_label(bucket_seconds)

    def rows(found: Sequence[Any], shift: timedelta, side: str) -> list[dict[str, Any]]:
        out = []
        for p in found:
            at = p.start + shift
            if not (since < at + timedelta(seconds=bucket_seconds) and at < until):
                continue  # the window's first bucket may start before it: kept
            for name in ("p50", "p95"):
                out.append(
                    {"start": _iso(at + timedelta(seconds=bucket_seconds) / 2),
                     "ms": float(getattr(p, name)), "line": f"{name} {side}".strip(),
                     "bucket": f"{fmt.utc(p.start, seconds=False)} + {size}", "runs": p.n}
                )  # fmt: skip
        return out

    now, then = rows(points, timedelta(0), ""), rows(baseline, offset, "baseline")
    if not now + then:
        return empty(height=200)
    color = alt.Color(
        "line:N",
        scale=alt.Scale(
            domain=["p50", "p95", "p50 baseline", "p95 baseline"],
            range=["#009E73", "#6A3D9A", "#009E73", "#6A3D9A"],
        ),
        legend=alt.Legend(title=None, orient="top", direction="horizontal"),
    )
    dash = alt.StrokeDash(
        "line:N",
        scale=alt.Scale(
            domain=["p50", "p95", "p50 baseline", "p95 baseline"],
            range=[[1, 0], [1, 0], BASELINE_DASH, BASELINE_DASH],
        ),
        legend=None,
    )
    highest = max(r["ms"] for r in now + then)
    y = alt.Y("ms:Q", title="duration (ms)", scale=alt.Scale(domain=[0, highest * 1.05]))
    lines = (
        alt.Chart(_data(now + then))
        .mark_line(strokeWidth=1.6, point=alt.OverlayMarkDef(size=10))
        .encode(**_channels(
            x=x, y=y, color=color, strokeDash=dash,
            tooltip=_tooltips(("line:N", "Line", None), ("bucket:N", "Bucket (UTC)", None),
                              ("ms:Q", "Duration (ms)", ",.1f"), ("runs:Q", "Runs", ",")),
        ))
    )  # fmt: skip
    return _layered(lines, *version_rules(marks, x_scale, since, until), height=200)


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
            **_channels(
                y=alt.Y(
                    "label:N", sort=alt.SortField("rank"), title=None, axis=alt.Axis(labelLimit=240)
                ),
                x=alt.X("count:Q", title="runs", axis=_count_axis(_highest(data))),
                color=alt.condition("datum.nomatch", alt.value(ACCENT_LIGHT), alt.value(ACCENT)),
                tooltip=_tooltips(
                    ("label:N", "Case", None),
                    ("count:Q", "Runs", ","),
                    ("share:Q", "Share of ok runs", ".1%"),
                ),
            )
        )
        .properties(height=max(120, 30 * len(data)), autosize=FIT_WIDTH)
    )
    return _pickable(chart, CASE_SELECTION, "case") if selectable else chart


#: Bin edges keep this many significant digits of the bin width: bins stay apart and touching,
#: without the float noise of ``low + i * width`` (``-39.84584798186362`` reads ``-39.846``).
EDGE_DIGITS = 4


def _rounded(value: float, decimals: int) -> float:
    return round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def rounded_bins(bins: Sequence[HistogramBin]) -> list[HistogramBin]:
    """The bins with edges rounded to :data:`EDGE_DIGITS` significant digits of the bin width."""
    width = max((b.end - b.start for b in bins), default=0.0)
    if width <= 0:  # one bin of equal values: the value to 6 significant digits
        return [HistogramBin(float(f"{b.start:.6g}"), float(f"{b.end:.6g}"), b.count) for b in bins]
    decimals = EDGE_DIGITS - 1 - math.floor(math.log10(width))
    return [
        HistogramBin(_rounded(b.start, decimals), _rounded(b.end, decimals), b.count) for b in bins
    ]


def _histogram_rows(bins: Sequence[HistogramBin], total: int) -> list[dict[str, Any]]:
    return [
        {
            "start": b.start,
            "end": b.end if b.end > b.start else b.start + 1,
            "count": b.count,
            "share": b.count / total if total else 0.0,
            "range": f"{b.start:,.1f} – {b.end:,.1f}",
        }
        for b in rounded_bins(bins)
    ]


def points_histogram(
    bins: Sequence[HistogramBin], baseline: Sequence[HistogramBin] | None = None
) -> AltChart:
    """Awarded points in equal-width bins with rounded edges (``Overview.pointsHistogram``).

    With ``baseline`` (the baseline Overview's bins) both are drawn as shares of their runs,
    the baseline as an outline, so that windows of different volume compare.
    """
    if not bins:
        return empty("no points awarded in this window", height=220)
    data = _histogram_rows(bins, sum(b.count for b in bins))
    x = alt.X("start:Q", bin="binned", title="points awarded")
    tooltip = [("range:N", "Points", None), ("count:Q", "Runs", ",")]
    if not baseline:
        y = alt.Y("count:Q", title="runs", axis=_count_axis(_highest(data)))
        return (
            alt.Chart(_data(data))
            .mark_bar(color=ACCENT, binSpacing=1)
            .encode(**_channels(x=x, x2="end:Q", y=y, tooltip=_tooltips(*tooltip)))
            .properties(height=220, autosize=FIT_WIDTH)
        )
    before = _histogram_rows(baseline, sum(b.count for b in baseline))
    top = max(_highest(data, "share"), _highest(before, "share"))
    y = alt.Y("share:Q", title="share of runs", axis=alt.Axis(format=".0%"),
              scale=alt.Scale(domain=[0, top]))  # fmt: skip
    now = (
        alt.Chart(_data(data))
        .mark_bar(color=ACCENT, binSpacing=1, opacity=0.85)
        .encode(
            **_channels(
                x=x, x2="end:Q", y=y, tooltip=_tooltips(*tooltip, ("share:Q", "Share", ".1%"))
            )
        )
    )
    outline = (
        alt.Chart(_data(before))
        .mark_bar(fillOpacity=0, stroke=BASELINE_COLOR, strokeWidth=1.2, strokeDash=BASELINE_DASH)
        .encode(**_channels(
            x=x, x2="end:Q", y=y,
            tooltip=_tooltips(
                ("range:N", "Baseline points", None),
                ("count:Q", "Baseline runs", ","),
                ("share:Q", "Baseline share", ".1%"),
            ),
        ))
    )  # fmt: skip
    return _layered(now, outline, height=220)


#: Percentile marks: name and colour. Three hues far apart in hue and lightness (bluish green,
#: purple, near-black), so they tell apart in a pasted PNG and for the common colour-vision
#: deficiencies; none is a status colour (those mean statuses only).
PERCENTILE_MARKS = (("p50", "#009E73"), ("p95", "#6A3D9A"), ("p99", TEXT))
#: Rows of the duration strip (a hidden y scale): the mean's label below the strip, then the
#: strip, then one label row per percentile. The highest value sits nearest the strip and every
#: label runs rightwards from its leader, so no label crosses another percentile's leader.
_STRIP_ROWS = {"mean": 0.0, "strip": 1.0, "p99": 2.0, "p95": 3.0, "p50": 4.0}
_LEADER_FROM = _STRIP_ROWS["strip"] - 0.45  # leaders cross the strip: the tick is visible on it
#: Plot height of the duration strip: the mean's label row, the strip, three percentile rows.
DURATION_HEIGHT = 104


def _row(field: str) -> alt.Y:
    return alt.Y(field, scale=alt.Scale(domain=[-0.5, 4.5]), axis=None)


def _duration_x(low: float, high: float) -> alt.X:
    """The duration axis: log from the fastest to the slowest run; symlog if a run took 0 ms."""
    axis = alt.Axis(grid=False, tickCount=6, labelFlush=True, labelOverlap="greedy")
    if low <= 0:  # log cannot show 0: say how the axis is drawn instead
        scale = alt.Scale(type="symlog", domain=[low, high], nice=False)
        title = "duration (ms, linear below 1, log above)"
        return alt.X("x:Q", title=title, scale=scale, axis=axis)
    wide = [low, high] if high > low else [low / 2, high * 2]
    scale = alt.Scale(type="log", domain=wide, nice=False)
    return alt.X("x:Q", title="duration (ms, log scale)", scale=scale, axis=axis)


def _strip_marks(durations: Percentiles, mean: float | None) -> list[dict[str, Any]]:
    """One labelled mark per percentile and the mean: value, label row and text."""
    values = {"p50": durations.p50, "p95": durations.p95, "p99": durations.p99, "mean": mean}
    return [
        {
            "name": name,
            "x": value,
            "row": _STRIP_ROWS[name],
            "strip": _STRIP_ROWS["strip"],
            "low": _LEADER_FROM,
            "text": f"{name} {fmt.ms(value)}",
        }
        for name, value in values.items()
        if value is not None
    ]


def _percentile_layers(marks: list[dict[str, Any]], x: alt.X) -> list[Any]:
    """A leader from the strip up to each percentile's label row, and the label in its colour."""
    names = [n for n, _ in PERCENTILE_MARKS]
    scale = alt.Scale(domain=names, range=[c for _, c in PERCENTILE_MARKS])
    color = alt.Color("name:N", scale=scale, legend=None)  # the labels name them
    base = alt.Chart(_data([m for m in marks if m["name"] in names]))
    leaders = base.mark_rule(strokeWidth=2.5).encode(
        **_channels(
            x=x,
            y=_row("low:Q"),
            y2="row:Q",
            color=color,
            tooltip=_tooltips(("text:N", "Percentile", None)),
        )
    )
    labels = base.mark_text(align="left", baseline="middle", dx=5, fontSize=12, fontWeight="bold")
    return [leaders, labels.encode(**_channels(x=x, y=_row("row:Q"), text="text:N", color=color))]


def _mean_layers(marks: list[dict[str, Any]], x: alt.X) -> list[Any]:
    """The mean: an open diamond on the strip, labelled below it."""
    base = alt.Chart(_data([m for m in marks if m["name"] == "mean"]))
    diamond = base.mark_point(
        shape="diamond", size=110, filled=True, fill="#ffffff", stroke=TEXT, strokeWidth=1.5
    ).encode(**_channels(x=x, y=_row("strip:Q"), tooltip=_tooltips(("x:Q", "mean (ms)", ",.2f"))))
    label = base.mark_text(align="left", baseline="middle", dx=7, fontSize=12, color=TEXT)
    return [diamond, label.encode(**_channels(x=x, y=_row("row:Q"), text="text:N"))]


def duration_strip(durations: Percentiles, summary: Mapping[str, Any]) -> AltChart:
    """min–max range, p50 / p95 / p99 and the mean, each labelled with its value (milliseconds)."""
    low, high = summary.get("minDurationMs"), summary.get("maxDurationMs")
    if durations.p50 is None or low is None or high is None:
        return empty(height=44)
    x = _duration_x(float(low), float(high))
    span = alt.Chart(_data([{"x": low, "max": high, "strip": _STRIP_ROWS["strip"]}]))
    rule = span.mark_rule(color=ACCENT_LIGHT, strokeWidth=6, strokeCap="round").encode(
        **_channels(
            x=x,
            x2="max:Q",
            y=_row("strip:Q"),
            tooltip=_tooltips(("x:Q", "min (ms)", ",.2f"), ("max:Q", "max (ms)", ",.2f")),
        )
    )
    marks = _strip_marks(durations, summary.get("avgDurationMs"))
    return _layered(
        rule, *_percentile_layers(marks, x), *_mean_layers(marks, x), height=DURATION_HEIGHT
    )


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
            **_channels(
                y=alt.Y(
                    "code:N", sort=alt.SortField("rank"), title=None, axis=alt.Axis(labelLimit=240)
                ),
                x=alt.X("count:Q", title="runs", axis=_count_axis(_highest(data))),
                tooltip=_tooltips(
                    ("code:N", "Error code", None),
                    ("count:Q", "Runs", ","),
                    ("share:Q", "Share of failures", ".1%"),
                ),
            )
        )
        .properties(height=max(120, 28 * len(data)), autosize=FIT_WIDTH)
    )


def overview_charts(
    overview: Overview,
    *,
    selectable: bool = False,
    before: Overview | None = None,
    marks: Sequence[tuple[str, datetime]] = (),
    only: Collection[str] | None = None,
) -> dict[str, AltChart]:
    """Every Overview chart by panel name (for PNG export: ``style(chart).save(...)``), or the
    panels named in ``only``; with ``before`` (the baseline's Overview), the timeseries and
    points show it too, and the timeseries draws a rule at each of ``marks`` (version, first
    seen). Charts not asked for are not built (the timeseries is the dearest)."""
    offset = overview.since - before.since if before is not None else timedelta(0)
    builders: dict[str, Callable[[], AltChart]] = {
        "status": lambda: status_donut(overview.status_rows(), selectable=selectable),
        "timeseries": lambda: timeseries(
            overview.timeseries,
            overview.bucketSeconds,
            overview.since,
            overview.until,
            baseline=None if before is None else before.timeseries,
            offset=offset,
            marks=marks,
            selectable=selectable,
        ),
        "errors": lambda: error_code_bars(overview.errorCodes, overview.failures),
        "cases": lambda: case_bars(overview.caseNames, overview.ok, selectable=selectable),
        "durations": lambda: duration_strip(overview.durations, overview.summary),
        "points": lambda: points_histogram(
            overview.pointsHistogram, None if before is None else before.pointsHistogram
        ),
    }
    return {name: build() for name, build in builders.items() if only is None or name in only}


# -- Insights -------------------------------------------------------------------------------------

NOW_COLOR = ACCENT
THEN_COLOR = ACCENT_LIGHT
FINDING_HEIGHT = 150


def _sides(rows: Sequence[Mapping[str, Any]], value_format: str, title: str) -> AltChart:
    """Horizontal bars of a few labelled figures (now against the baseline), values printed."""
    data = [{**r, "order": i} for i, r in enumerate(rows)]
    y = alt.Y("label:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelLimit=260))
    top = max([float(r["value"]) for r in data] + [0.0])
    # Room on the right for the printed values.
    scale = alt.Scale(domain=[0, top * 1.25 if top > 0 else 1])
    base = alt.Chart(_data(data)).encode(
        **_channels(
            y=y,
            x=alt.X(
                "value:Q", title=title, scale=scale, axis=alt.Axis(format=value_format, tickCount=4)
            ),
            tooltip=_tooltips(("label:N", "", None), ("value:Q", title, value_format)),
        )
    )
    bars = base.mark_bar(cornerRadiusEnd=3).encode(
        **_channels(
            color=alt.Color(
                "side:N",
                scale=alt.Scale(domain=["now", "baseline"], range=[NOW_COLOR, THEN_COLOR]),
                legend=None,
            )
        )
    )
    labels = base.mark_text(align="left", dx=4, color=TEXT).encode(
        **_channels(text=alt.Text("value:Q", format=value_format))
    )
    return _layered(bars, labels, height=max(60, 30 * len(data)))


def _grouped(rows: Sequence[Mapping[str, Any]], title: str, across: bool = False) -> AltChart:
    """Shares now and in the baseline per category (``label``), side by side: columns along
    the value axis, or (``across``) one row per category, for names."""
    data = []
    for i, r in enumerate(rows):
        data.append({"label": r["label"], "side": "now", "share": r["share"], "order": i})
        data.append({"label": r["label"], "side": "baseline", "share": r["baseline"], "order": i})
    share = alt.Axis(format="%", tickCount=4)
    if across:
        categories = {
            "y": alt.Y(
                "label:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelLimit=200)
            ),
            "yOffset": alt.YOffset("side:N", sort=["baseline", "now"]),
            "x": alt.X("share:Q", title="share of ok runs", axis=share),
        }
        height = max(80, 26 * len(rows))
    else:
        categories = {
            "x": alt.X(
                "label:N",
                sort=alt.SortField("order"),
                title=title,
                axis=alt.Axis(labelAngle=-40, labelLimit=90, labelOverlap=False, labelFontSize=10),
            ),
            "xOffset": alt.XOffset("side:N", sort=["baseline", "now"]),
            "y": alt.Y("share:Q", title="share", axis=share),
        }
        height = FINDING_HEIGHT
    return (
        alt.Chart(_data(data))
        .mark_bar()
        .encode(**_channels(
            **categories,
            color=alt.Color("side:N", scale=alt.Scale(domain=["now", "baseline"],
                            range=[NOW_COLOR, THEN_COLOR]), title=None),
            tooltip=_tooltips(("label:N", title, None), ("side:N", "", None),
                              ("share:Q", "Share", ".1%")),
        ))
        .properties(height=height, autosize=FIT_WIDTH)
    )  # fmt: skip


def _hourly(evidence: Mapping[str, Any]) -> AltChart:
    """A code's runs per hour in the window, the spike threshold and the baseline's mean."""
    data = [{"hour": at, "runs": n} for at, n in evidence.get("hours", [])]
    bars = (
        alt.Chart(_data(data))
        .mark_bar(color=ACCENT)
        .encode(**_channels(
            x=alt.X("hour:T", title=None, axis=alt.Axis(format="%m-%d %H:%M", labelAngle=0)),
            y=alt.Y("runs:Q", title="runs per hour", axis=_count_axis(_highest(data, "runs"))),
            tooltip=[alt.Tooltip("hour:T", title="Hour (UTC)", format="%Y-%m-%d %H:%M"),
                     alt.Tooltip("runs:Q", title="Runs", format=",")],
        ))
    )  # fmt: skip
    lines = [
        {"y": evidence["threshold"], "what": "spike above"},
        {"y": evidence["baselineMean"], "what": "baseline mean"},
    ]
    rules = (
        alt.Chart(_data(lines))
        .mark_rule(strokeDash=[4, 3])
        .encode(**_channels(
            y="y:Q",
            color=alt.Color("what:N", scale=alt.Scale(domain=["spike above", "baseline mean"],
                            range=[VERSION_COLOR, MUTED]), title=None),
            tooltip=_tooltips(("what:N", "", None), ("y:Q", "Runs per hour", ",.1f")),
        ))
    )  # fmt: skip
    return _layered(bars, rules, height=FINDING_HEIGHT)


def _ranges(evidence: Mapping[str, Any], kind: str) -> AltChart:
    """A shift's ranges of equal pooled mass: each side's share per range."""
    rows = [
        {"label": f"≤ {_short(g['upTo'])}",
         "share": g["share"], "baseline": g["baselineShare"]}
        for g in evidence.get("groups", [])
    ]  # fmt: skip
    return _grouped(rows, {"duration": "duration (ms)"}.get(kind, kind))


def _short(value: float) -> str:
    """Three significant digits, thousands separated."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


#: Finding kinds drawn as one share now beside one in the baseline: (label, evidence key) for
#: each side, and the axis title.
SHARE_PAIRS: dict[str, tuple[tuple[str, str], tuple[str, str], str]] = {
    "fallthrough_shift": (("no rule matched, now", "share"),
                          ("in the baseline", "baselineShare"), "share of ok runs"),
    "failure_payload_lift": (("failing runs sampled", "support"),
                             ("ok runs sampled", "okShare"), "share with this field value"),
}  # fmt: skip


def _figure_pairs(
    kind: str, e: Mapping[str, Any]
) -> tuple[list[tuple[str, float, str]], str, str] | None:
    """The few figures (label, value, side) a finding's bar chart shows, their format and the
    axis title; ``None`` for a kind drawn otherwise."""
    if kind == "new_error_code":
        figures = [
            ("runs now", e["runs"], "now"),
            ("runs in the baseline", 0, "baseline"),
            ("expected there at today's rate", e["expectedInBaseline"], "baseline"),
        ]
        return figures, ",.0f", "runs"
    if kind == "dormant_case":
        figures = [
            ("runs in the baseline", e["baselineRuns"], "baseline"),
            ("expected now", e["expected"], "baseline"),
            ("runs now", 0, "now"),
        ]
        return figures, ",.0f", "runs"
    if kind in SHARE_PAIRS:
        (now_label, now_key), (then_label, then_key), title = SHARE_PAIRS[kind]
        return [(now_label, e[now_key], "now"), (then_label, e[then_key], "baseline")], ".1%", title
    if kind == "node_budget_headroom":
        return (
            [("p99 of nodes", e["p99"], "now"), ("node budget", e["budget"], "baseline")],
            ",.0f",
            "nodes",
        )
    if kind == "suspect_version":
        return (
            [
                ("this version", _rate(e["failed"], e["runs"]), "now"),
                ("the version before", _rate(e["previousFailed"], e["previousRuns"]), "baseline"),
            ],
            ".1%",
            "failure rate",
        )
    return None  # fmt: skip


def finding_chart(kind: str, evidence: Mapping[str, Any]) -> AltChart:
    """The small chart of an Insights card: the figures behind the finding, now against the
    baseline (or the failing runs against the ok runs)."""
    e = evidence
    if kind == "spiking_error_code":
        return _hourly(e)
    if kind.endswith("_shift") and "groups" in e:
        return _ranges(e, kind.removesuffix("_shift"))
    if kind == "case_mix_shift":
        rows = [{"label": fmt.case_label(c["caseName"]), "share": c["share"],
                 "baseline": c["baselineShare"]} for c in e.get("cases", [])]  # fmt: skip
        return _grouped(rows, "rule case", across=True)
    pairs = _figure_pairs(kind, e)
    if pairs is not None:
        figures, value_format, title = pairs
        rows = [{"label": label, "value": value, "side": side} for label, value, side in figures]
        return _sides(rows, value_format, title)
    return empty("no chart for this finding", height=80)
