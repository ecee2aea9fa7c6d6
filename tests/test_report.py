"""Incident snapshot: Markdown, tables and charts from an Overview, bundled as one zip."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from PIL import Image

from stratlog import report
from stratlog.service.overview import fetch_overview
from stratlog.service.stats import percentiles
from stratlog.vocabulary import visible
from tests.cli.helpers import SPIKE_SINCE, SPIKE_UNTIL, make_demo, repository
from tests.test_export import make_overview

MADE = datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC)
CSVS = {"status.csv", "error_codes.csv", "cases.csv", "percentiles.csv", "figures.csv",
        "timeseries.csv"}  # fmt: skip


def _csv(snapshot: report.Snapshot, name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(snapshot.files[name]))


def test_markdown_holds_the_headline_figures_and_tables():
    snapshot = report.build_snapshot(make_overview(), generated=MADE, charts=False)
    assert set(snapshot.files) == {"snapshot.md", *CSVS}
    text = snapshot.files["snapshot.md"].decode()
    assert text.startswith("# Incident snapshot: fraud\\-screen\n")
    assert "- **Window:** 2026-03-01 06:00:00 → 2026-03-01 07:00:00 UTC (1 h, end excluded)" in text
    assert "- **Generated:** 2026-03-02 09:15:30 UTC by `stratlog snapshot`" in text
    assert "- **Runs:** 18, of which 4 failed (22.2 %)" in text
    assert "- **Top error code:** UPSTREAM\\_UNAVAILABLE (3 runs)" in text
    assert "| error | 3 | 16.7 % |" in text and "| limit | 0 | 0.0 % |" in text
    assert "| UPSTREAM\\_UNAVAILABLE | 3 | 75.0 % |" in text
    assert "| no rule matched (defaultPoints) | 4 | 28.6 % |" in text  # of the 14 ok runs
    assert "| duration (ms) | 9.00 | 42.40 | 48.48 | exact, over all 5 runs |" in text
    assert "| points awarded (sum) | -40.00 |" in text and "| total nodes | 2,700 |" in text
    assert "4 runs that did not end ok have no case" in text  # where the failed runs went


def test_csv_tables_carry_the_raw_values():
    snapshot = report.build_snapshot(make_overview(), generated=MADE, charts=False)
    status = _csv(snapshot, "status.csv")
    assert status.to_dict("records") == [
        {"status": "ok", "count": 14, "share": pytest.approx(14 / 18)},
        {"status": "error", "count": 3, "share": pytest.approx(3 / 18)},
        {"status": "timeout", "count": 1, "share": pytest.approx(1 / 18)},
        {"status": "limit", "count": 0, "share": 0.0},
    ]
    cases = _csv(snapshot, "cases.csv")
    assert cases["case"].tolist() == ["velocity_ok", "no rule matched (defaultPoints)"]
    assert cases["caseName"].isna().tolist() == [False, True]
    series = _csv(snapshot, "timeseries.csv")
    assert series["count"].sum() == 18 and set(series["bucketSeconds"]) == {1800}
    assert pd.to_datetime(series["bucketStart"]).min() == pd.Timestamp(SPIKE_SINCE)


def test_log_text_is_escaped_in_markdown():
    hostile = make_overview(
        strategyId="a|b <script>\n# x",
        errorCodes=[{"errorCode": "E*1_|`", "count": 3}],
        caseNames=[{"caseName": "[click](http://x) & ![img](y)", "count": 14}],
    )
    text = report.markdown(hostile, MADE, {})
    assert "# Incident snapshot: a\\|b \\<script\\> \\# x\n" in text
    assert "| E\\*1\\_\\|\\` | 3 | 75.0 % |" in text
    link = "\\[click\\]\\(http\\:\u2060\\/\\/x\\)"  # escaped, and no bare URL either
    assert f"| {link} \\& \\!\\[img\\]\\(y\\) | 14 | 100.0 % |" in text
    assert "<script>" not in text and "](http" not in text.replace("\\](http", "")


def test_an_empty_window_still_makes_a_whole_snapshot():
    empty = make_overview(
        statusCounts={}, errorCodes=[], caseNames=[], timeseries=[], pointsHistogram=[],
        summary={k: (0 if k == "count" else None) for k in make_overview().summary},
        durations=percentiles([], 0), points=percentiles([], 0),
    )  # fmt: skip
    snapshot = report.build_snapshot(empty, generated=MADE)
    text = snapshot.files["snapshot.md"].decode()
    assert "- **Runs:** 0, of which 0 failed (–)" in text
    assert "- **Top error code:** none in this window" in text
    assert "No runs in this window." in text and "no runs in this window |" in text
    for name in (n for n in snapshot.files if n.endswith(".png")):
        assert Image.open(io.BytesIO(snapshot.files[name])).format == "PNG"
    assert _csv(snapshot, "error_codes.csv").columns.tolist() == [
        "errorCode", "count", "shareOfFailures",
    ]  # fmt: skip


def test_zip_bundles_every_file_and_is_written_atomically(tmp_path: Path):
    snapshot = report.build_snapshot(make_overview(), generated=MADE, name="INC-1")
    data = snapshot.zip_bytes()
    assert data == snapshot.zip_bytes()  # stamped with the generation time: reproducible
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert names[0] == "snapshot.md" and set(names) == set(snapshot.files)
        assert archive.getinfo("status.png").date_time == (2026, 3, 2, 9, 15, 30)
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == 6
    text = snapshot.files["snapshot.md"].decode()
    assert all(f"]({n})" in text for n in pngs)
    (tmp_path / "new" / "dir").mkdir(parents=True)
    (tmp_path / "new" / "dir" / "INC-1.zip").write_bytes(b"stale")  # replaced, not kept
    target = snapshot.write(tmp_path / "new" / "dir")
    assert target == tmp_path / "new" / "dir" / "INC-1.zip"
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["INC-1.zip"]


def test_default_name_and_the_dashboard_one_liner():
    overview = make_overview()
    assert report.default_name(overview) == "snapshot_fraud-screen_20260301T0600Z-20260301T0700Z"
    with zipfile.ZipFile(io.BytesIO(report.snapshot_zip(overview))) as archive:
        assert len(archive.namelist()) == 13


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_demo(tmp_path_factory.mktemp("report") / "demo.db")


async def test_tables_equal_the_repository_on_the_demo_incident(demo: str):
    scope: dict[str, Any] = {
        "strategyId": "fraud-screen", "sinceDt": SPIKE_SINCE, "untilDt": SPIKE_UNTIL,
    }  # fmt: skip
    async with repository(demo) as repo:
        overview = await fetch_overview(repo, "fraud-screen", SPIKE_SINCE, SPIKE_UNTIL)
        status = await repo.count_by_status(**scope)
        codes = await repo.count_by_error_code(**scope)
        cases = await repo.count_by_case_name(**scope, status="ok")
        summary = await repo.duration_and_nodes_summary(**scope)
    tables = report.tables(overview)
    assert {r["status"]: r["count"] for r in tables["status"]} == {
        s: status.get(s, 0) for s in ("ok", "error", "timeout", "limit")
    }
    assert [{k: r[k] for k in ("errorCode", "count")} for r in tables["error_codes"]] == codes
    assert [{k: r[k] for k in ("caseName", "count")} for r in tables["cases"]] == cases
    figures = {r["figure"]: r["value"] for r in tables["figures"]}
    assert figures["runs"] == summary["count"] == sum(status.values())
    assert figures["points awarded (sum)"] == summary["sumPoints"]
    assert codes[0]["errorCode"] == "UPSTREAM_UNAVAILABLE"
    assert status["error"] / sum(status.values()) > 0.1  # the spike (background: about 1 %)


def test_the_status_chart_carries_the_panels_title():
    assert ("status", "Outcome by status", 560) in report.CHARTS  # the Overview panel's title
    snapshot = report.build_snapshot(make_overview(), generated=MADE, charts=False)
    text = snapshot.files["snapshot.md"].decode()
    assert "\n## Outcome by status\n" in text and "Runs by status" not in text
    files = {"status.png": b"png"}
    assert "![Outcome by status](status.png)" in report.markdown(make_overview(), MADE, files)


def test_timeseries_csv_lists_every_bucket_of_the_window_with_zeros():
    since, until = SPIKE_SINCE - timedelta(hours=1), SPIKE_UNTIL + timedelta(minutes=10)
    overview = make_overview(since=since, until=until)  # runs in 2 of 5 buckets (05:00-07:10)
    series = _csv(report.build_snapshot(overview, generated=MADE, charts=False), "timeseries.csv")
    starts = pd.date_range(since, periods=5, freq="30min").strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert series["bucketStart"].tolist() == [s for s in starts for _ in range(4)]  # in order
    assert series["status"].tolist() == ["ok", "error", "timeout", "limit"] * 5
    keys = zip(series["bucketStart"], series["status"], strict=True)
    counts = dict(zip(keys, series["count"], strict=True))
    assert counts[("2026-03-01T06:00:00+00:00", "error")] == 3
    assert counts[("2026-03-01T06:30:00+00:00", "ok")] == 9
    assert counts[("2026-03-01T05:30:00+00:00", "ok")] == 0  # an empty bucket is a row of zeros
    assert series["count"].sum() == 18 and set(series["bucketSeconds"]) == {1800}


def test_a_window_off_the_bucket_grid_starts_with_the_bucket_holding_its_start():
    since = SPIKE_SINCE + timedelta(minutes=10)  # 06:10, in the 06:00 bucket
    overview = make_overview(since=since, timeseries=[])
    rows = report.timeseries_rows(overview)
    assert sorted({r["bucketStart"] for r in rows}) == [
        SPIKE_SINCE,
        SPIKE_SINCE + timedelta(minutes=30),
    ]
    assert {r["count"] for r in rows} == {0}


LINK = "https://dash.example/overview?strategy=fraud-screen&window=custom&since=2026-03-01T06%3A00Z"


def _inline(text: str) -> list[Any]:
    """The inline tokens of a Markdown document (CommonMark, as GitHub and most editors read it)."""
    tokens = MarkdownIt("commonmark").parse(text)
    return [child for t in tokens if t.type == "inline" for child in t.children or []]


def test_a_dashboard_snapshot_says_so_and_links_back_to_its_view():
    snapshot = report.build_snapshot(
        make_overview(), generated=MADE, charts=False, source=report.DASHBOARD, link=LINK
    )
    text = snapshot.files["snapshot.md"].decode()
    assert "- **Generated:** 2026-03-02 09:15:30 UTC from the dashboard\n" in text
    assert "stratlog snapshot" not in text
    assert f"- **Dashboard link:** `{LINK}`\n" in text
    inline = _inline(text)
    assert [t.content for t in inline if "dash.example" in t.content] == [LINK]  # code only
    assert [t.type for t in inline if t.content == LINK] == ["code_inline"]
    assert not [t for t in inline if t.type == "link_open"]  # shown, never a live link


def test_the_command_line_snapshot_has_no_link_and_names_the_command():
    files = report.build_snapshot(make_overview(), generated=MADE, charts=False).files
    document = files["snapshot.md"].decode()
    assert "- **Generated:** 2026-03-02 09:15:30 UTC by `stratlog snapshot`\n" in document
    assert "Dashboard link" not in document


@pytest.mark.parametrize(
    "link",
    [
        "https://x/overview?a=1`](http://evil)<b>\n# heading",
        "``https://x/``a",
        "https://x/\u202eoverview",
    ],
)
def test_a_hostile_link_stays_one_inline_code_span(link: str):
    text = report.markdown(make_overview(), MADE, {}, source=report.DASHBOARD, link=link)
    (line,) = [x for x in text.splitlines() if x.startswith("- **Dashboard link:**")]
    inline = _inline(line)
    assert [t.type for t in inline if t.type not in ("text", "softbreak")] == [
        "strong_open", "strong_close", "code_inline"
    ]  # fmt: skip
    assert inline[-1].content == visible(" ".join(link.split()))  # as it is, flattened, shown
    assert "\n# heading" not in text and "\u202e" not in text
