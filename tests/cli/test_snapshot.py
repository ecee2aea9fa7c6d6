"""``stratlog snapshot``: one zip whose figures, tables and charts equal the repository's."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from stratlog.service.stats import percentiles
from tests.cli.helpers import SPIKE, SPIKE_SINCE, SPIKE_UNTIL, repository, stratlog

NAME = "snapshot_fraud-screen_20260301T0600Z-20260301T0700Z"
CHARTS = ["timeseries.png", "status.png", "errors.png", "cases.png", "durations.png", "points.png"]
TABLES = ["status.csv", "error_codes.csv", "cases.csv", "percentiles.csv", "figures.csv",
          "timeseries.csv", "findings.csv"]  # fmt: skip


@pytest.fixture(scope="module")
def bundle(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("snap") / "incidents" / "INC-1"  # created on demand
    done = stratlog("--database", demo_url, "snapshot", "fraud-screen", *SPIKE, "--out", str(out))
    assert done.returncode == 0, done.stderr
    target = out / f"{NAME}.zip"
    assert done.stdout == f"wrote {target} (snapshot.md, 6 charts, 7 tables)\n"
    with zipfile.ZipFile(target) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
async def truth(demo_url: str) -> dict[str, Any]:
    scope = {"strategyId": "fraud-screen", "sinceDt": SPIKE_SINCE, "untilDt": SPIKE_UNTIL}
    async with repository(demo_url) as repo:
        summary = await repo.duration_and_nodes_summary(**scope)
        return {
            "status": await repo.count_by_status(**scope),
            "codes": await repo.count_by_error_code(**scope),
            "cases": await repo.count_by_case_name(**scope, status="ok"),  # the ok runs' cases
            "summary": summary,
            "durations": percentiles(await repo.sample_durations(**scope), summary["count"]),
        }


def _csv(bundle: dict[str, bytes], name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(bundle[name]))


def test_the_zip_holds_the_document_charts_and_tables(bundle: dict[str, bytes]):
    assert sorted(bundle) == sorted(["snapshot.md", "insights.json", *CHARTS, *TABLES])
    for name in CHARTS:
        image = Image.open(io.BytesIO(bundle[name]))
        assert image.format == "PNG" and image.width >= 1000  # scale 2
        assert image.convert("RGB").getpixel((2, 2)) == (255, 255, 255)  # white background
    text = bundle["snapshot.md"].decode()
    for name in CHARTS:
        assert f"]({name})" in text
    for name in TABLES:
        assert f"`{name}`" in text


def test_status_and_error_tables_equal_the_repository(bundle: dict[str, bytes], truth: Any):
    status = _csv(bundle, "status.csv")
    assert dict(zip(status["status"], status["count"], strict=True)) == {
        s: truth["status"].get(s, 0) for s in ("ok", "error", "timeout", "limit")
    }
    codes = _csv(bundle, "error_codes.csv")
    assert codes[["errorCode", "count"]].to_dict("records") == truth["codes"]


def test_case_table_keeps_the_no_rule_bucket(bundle: dict[str, bytes], truth: Any):
    cases = _csv(bundle, "cases.csv")
    got = [
        {"caseName": None if pd.isna(name) else name, "count": n}
        for name, n in zip(cases["caseName"], cases["count"], strict=True)
    ]
    assert got == truth["cases"]
    labels = dict(zip(cases["count"], cases["case"], strict=False))
    none_count = next(c["count"] for c in truth["cases"] if c["caseName"] is None)
    assert labels[none_count] == "no rule matched (defaultPoints)"


def test_figures_and_percentiles_equal_the_repository(bundle: dict[str, bytes], truth: Any):
    figures = dict(_csv(bundle, "figures.csv").itertuples(index=False, name=None))
    s = truth["summary"]
    assert figures["runs"] == s["count"] and figures["total nodes"] == s["sumNodes"]
    assert figures["points awarded (sum)"] == pytest.approx(s["sumPoints"])
    assert figures["max duration (ms)"] == pytest.approx(s["maxDurationMs"])
    p = _csv(bundle, "percentiles.csv").set_index("figure").loc["duration (ms)"]
    d = truth["durations"]
    assert (p["p50"], p["p95"], p["p99"]) == pytest.approx((d.p50, d.p95, d.p99))
    assert bool(p["exact"]) is True and p["total"] == s["count"]


def test_markdown_states_the_repository_figures(bundle: dict[str, bytes], truth: Any):
    text = bundle["snapshot.md"].decode()
    total = truth["summary"]["count"]
    failed = total - truth["status"].get("ok", 0)
    assert "# Incident snapshot: fraud\\-screen" in text
    assert "2026-03-01 06:00:00 → 2026-03-01 07:00:00 UTC" in text
    assert f"- **Runs:** {total}, of which {failed} failed ({failed / total * 100:.1f} %)" in text
    assert f"| error | {truth['status']['error']} |" in text
    top = truth["codes"][0]
    assert f"| UPSTREAM\\_UNAVAILABLE | {top['count']} | 100.0 % |" in text
    assert f"p95 {truth['durations'].p95:.2f} ms" in text


def test_an_unwritable_out_dir_exits_1(demo_url: str, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = stratlog("--database", demo_url, "snapshot", "fraud-screen", *SPIKE,
                    "--out", str(blocker / "sub"))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("stratlog: error: cannot write the snapshot to")
    assert "Traceback" not in done.stderr


def test_the_command_names_itself_and_links_to_no_view(bundle: dict[str, bytes]):
    text = bundle["snapshot.md"].decode()
    assert " UTC by `stratlog snapshot`\n" in text  # the command line passes no origin or link
    assert "Dashboard link" not in text and "from the dashboard" not in text
    assert "\n## Outcome by status\n" in text  # the dashboard panel's title


def test_timeseries_csv_has_every_bucket_and_status_of_the_window(
    bundle: dict[str, bytes], truth: Any
):
    series = _csv(bundle, "timeseries.csv")
    (seconds,) = set(series["bucketSeconds"])
    buckets = int((SPIKE_UNTIL - SPIKE_SINCE).total_seconds() // seconds)
    assert series["status"].tolist() == ["ok", "error", "timeout", "limit"] * buckets
    starts = pd.to_datetime(series["bucketStart"]).drop_duplicates().tolist()
    assert starts == [SPIKE_SINCE + timedelta(seconds=seconds * i) for i in range(buckets)]
    assert (series["count"] == 0).any()  # the buckets without runs are there, as zeros
    assert series["count"].sum() == truth["summary"]["count"]
