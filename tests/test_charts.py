"""Altair chart builders: valid specs, fixed status colours, UTC time axis, empty states."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratlog import charts
from stratlog.service.overview import Overview
from stratlog.service.stats import percentiles, weighted_histogram
from stratlog.vocabulary import NO_RULE, NO_RULE_LABEL, STATUS_COLORS, STATUS_ORDER

END = datetime(2026, 1, 15, 12, tzinfo=UTC)


def make_overview(empty: bool = False) -> Overview:
    """A small hand-made Overview (or an empty one)."""
    start = END - timedelta(hours=1)
    status = {} if empty else {"ok": 90, "error": 7, "timeout": 3}
    series = (
        []
        if empty
        else [
            {"bucketStart": start, "status": "ok", "count": 50},
            {"bucketStart": start, "status": "error", "count": 7},
            {"bucketStart": start + timedelta(minutes=30), "status": "ok", "count": 40},
            {"bucketStart": start + timedelta(minutes=30), "status": "timeout", "count": 3},
        ]
    )
    points = [] if empty else [float(i % 10) for i in range(90)]
    durations = [] if empty else [1.0 + i for i in range(100)]
    total = sum(status.values())
    summary: dict[str, Any] = {
        "count": total,
        "minDurationMs": min(durations, default=None),
        "avgDurationMs": sum(durations) / len(durations) if durations else None,
        "maxDurationMs": max(durations, default=None),
        "avgNodes": None if empty else 12.0,
        "sumPoints": None if empty else sum(points),
    }
    return Overview(
        strategyId="s",
        since=start,
        until=END,
        bucketSeconds=1800,
        statusCounts=status,
        errorCodes=[] if empty else [{"errorCode": "BOOM", "count": 7}],
        caseNames=[]
        if empty
        else [{"caseName": "gold", "count": 60}, {"caseName": None, "count": 40}],
        summary=summary,
        durations=percentiles(durations, total),
        points=percentiles(points),
        pointsHistogram=weighted_histogram([(p, 1) for p in points]),
        timeseries=series,
    )


def spec(chart: Any) -> dict[str, Any]:
    """The Vega-Lite dict (Altair validates it against the schema)."""
    result: dict[str, Any] = chart.to_dict()
    return result


def find(node: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in a nested spec."""
    found: list[Any] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found += find(v, key)
    elif isinstance(node, list):
        for item in node:
            found += find(item, key)
    return found


def test_every_overview_chart_is_a_valid_spec() -> None:
    for name, chart in charts.overview_charts(make_overview()).items():
        assert spec(charts.style(chart)), name


def test_status_colours_are_fixed_everywhere() -> None:
    ov = make_overview()
    for chart in (
        charts.status_donut(ov.status_rows()),
        charts.timeseries(ov.timeseries, 1800, ov.since, ov.until),
    ):
        scales = [s for s in find(spec(chart), "scale") if isinstance(s, dict) and "range" in s]
        assert {
            "domain": list(STATUS_ORDER),
            "range": [STATUS_COLORS[s] for s in STATUS_ORDER],
        } in scales


def test_selections_carry_the_runbook_filter_values() -> None:
    ov = make_overview()
    donut = spec(charts.status_donut(ov.status_rows()))
    assert charts.STATUS_SELECTION in [p["name"] for p in find(donut, "params")[0]]
    bars = spec(charts.case_bars(ov.caseNames, ov.total))
    values = json.dumps(bars)
    assert NO_RULE in values and NO_RULE_LABEL in values
    assert charts.CASE_SELECTION in values


def test_time_axis_is_utc_and_stacks_add_up() -> None:
    ov = make_overview()
    chart = spec(charts.timeseries(ov.timeseries, ov.bucketSeconds, ov.since, ov.until))
    assert chart["encoding"]["x"]["scale"]["type"] == "utc"
    rows = (
        chart["data"]["values"]
        if "values" in chart.get("data", {})
        else next(iter(chart["datasets"].values()))
    )
    first = [r for r in rows if r["start"] == "2026-01-15T11:00:00Z"]
    assert [(r["status"], r["low"], r["high"]) for r in first] == [("ok", 0, 50), ("error", 50, 57)]


@pytest.mark.parametrize("name", ["status", "timeseries", "errors", "cases", "durations", "points"])
def test_empty_overview_gives_empty_state_charts(name: str) -> None:
    chart = spec(charts.overview_charts(make_overview(empty=True))[name])
    assert "no " in json.dumps(chart)  # "no runs in this window" and the like
    assert chart["mark"]["type"] == "text"
