"""``stratlog compare`` through the console script, against the service on the same file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from stratlog.service.compare import Baseline, fetch_comparison
from tests.cli.helpers import SPIKE, SPIKE_SINCE, SPIKE_UNTIL, one_error_line, repository, run_all

RUNS = {
    "json": ["compare", "fraud-screen", *SPIKE, "--baseline", "previous", "--json"],
    "table": ["compare", "fraud-screen", *SPIKE],
    "banana": ["compare", "fraud-screen", "--baseline", "banana"],
    "unknown": ["compare", "fraud-scren", "--since", "6h"],
}


async def test_compare_prints_the_service_comparison(demo_url: str):
    done = run_all({k: ["--database", demo_url, *v] for k, v in RUNS.items()})
    assert done["json"].returncode == 0, done["json"].stderr
    got = json.loads(done["json"].stdout)
    async with repository(demo_url) as repo:
        expected = await fetch_comparison(
            repo, "fraud-screen", SPIKE_SINCE, SPIKE_UNTIL, Baseline("previous")
        )
    head = expected.headline()
    assert got["baseline"]["name"] == "previous"
    assert got["baseline"]["since"] == expected.before.since.isoformat()
    assert got["headline"]["runs"]["now"] == expected.current.total
    assert got["headline"]["runs"]["baseline"] == expected.before.total
    assert got["headline"]["failure"]["verdict"] == head["failure"].verdict
    # The demo's story: UPSTREAM_UNAVAILABLE spikes in this hour, and not in the one before.
    codes = {c["errorCode"]: c for c in got["errorCodes"]}
    assert codes["UPSTREAM_UNAVAILABLE"]["now"] > codes["UPSTREAM_UNAVAILABLE"]["baseline"]
    assert [c["errorCode"] for c in got["errorCodes"]] == [c.errorCode for c in expected.codes(10)]
    assert [c["stoppedFiring"] for c in got["caseNames"]] == [c.stopped for c in expected.cases(10)]

    table = done["table"]
    assert table.returncode == 0, table.stderr
    assert "compared with the previous window of the same length" in table.stdout
    assert "UPSTREAM_UNAVAILABLE" in table.stdout
    assert head["failure"].verdict in table.stdout and "Rule cases" in table.stdout

    assert done["banana"].returncode == 2
    assert "unknown baseline 'banana'" in one_error_line(done["banana"])
    assert done["unknown"].returncode == 2
    assert "did you mean 'fraud-screen'" in one_error_line(done["unknown"])


def test_compare_has_help_with_examples():
    done = run_all({"help": ["compare", "--help"]})["help"]
    assert done.returncode == 0, done.stderr
    assert "examples:\n  stratlog compare" in done.stdout and "--baseline" in done.stdout


async def test_a_snapshot_with_a_baseline_says_what_changed(demo_url: str, tmp_path):
    import csv
    import io
    import zipfile

    out = tmp_path / "incidents"
    args = ["snapshot", "fraud-screen", *SPIKE, "--baseline", "1d", "--out", str(out)]
    done = run_all({"snap": ["--database", demo_url, *args, "--name", "INC-2"]})["snap"]
    assert done.returncode == 0, done.stderr
    # comparison.csv, versions.csv and findings.csv beside the six
    assert "9 tables" in done.stdout
    with zipfile.ZipFile(out / "INC-2.zip") as archive:
        document = archive.read("snapshot.md").decode()
        insights = json.loads(archive.read("insights.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("comparison.csv").decode())))
        versions = list(csv.DictReader(io.StringIO(archive.read("versions.csv").decode())))
    # the findings against the same baseline as the comparison
    assert insights["baseline"]["until"] == (SPIKE_UNTIL - timedelta(days=1)).isoformat()
    assert "## Insights" in document
    # fraud-screen ran one version throughout: one row, nothing before it to compare with.
    assert [v["version"] for v in versions] == ["7.0.3"]
    assert "## Versions" in document and "| 7.0.3 |" in document.replace("\\", "")
    async with repository(demo_url) as repo:
        expected = await fetch_comparison(
            repo, "fraud-screen", SPIKE_SINCE, SPIKE_UNTIL, Baseline("1d")
        )
    assert "## Compared with the baseline" in document
    assert "the same window 1 day earlier" in document
    runs = next(r for r in rows if r["figure"] == "runs")
    assert (float(runs["now"]), float(runs["baseline"])) == (
        expected.current.total,
        expected.before.total,
    )
    failure = next(r for r in rows if r["figure"] == "failure rate")
    assert failure["verdict"] == expected.headline()["failure"].verdict


async def test_compare_two_versions(demo_url: str):
    """pricing-tier deploys 1.5.0 18 h before the demo's end: the last day holds both."""
    from stratlog.demo import DROPPED_CASE, NEW_VERSION_ERROR_CODE

    day = ["--since", "2026-02-28T12:00:00Z", "--until", "2026-03-01T12:00:00Z"]
    base = ["--database", demo_url, "compare", "pricing-tier", *day]
    done = run_all({
        "json": [*base, "--baseline", "version:1.4.0", "--version", "1.5.0", "--json"],
        "implied": [*base, "--baseline", "version:1.4.0", "--json"],
        "table": [*base, "--baseline", "version:1.4.0"],
        "itself": [*base, "--baseline", "version:1.5.0", "--version", "1.5.0"],
        "absent": [*base, "--baseline", "version:9.9"],
        "empty": [*base, "--baseline", "version:"],
    })  # fmt: skip
    got = json.loads(done["json"].stdout)
    assert (got["version"], got["baseline"]["version"]) == ("1.5.0", "1.4.0")
    assert got["baseline"]["since"] == got["since"]  # the same window
    codes = {c["errorCode"]: c for c in got["errorCodes"]}
    assert codes[NEW_VERSION_ERROR_CODE]["new"] and codes[NEW_VERSION_ERROR_CODE]["baseline"] == 0
    assert any(c["caseName"] == DROPPED_CASE and c["stoppedFiring"] for c in got["caseNames"])
    async with repository(demo_url) as repo:
        expected = await fetch_comparison(
            repo, "pricing-tier", datetime(2026, 2, 28, 12, tzinfo=UTC),
            datetime(2026, 3, 1, 12, tzinfo=UTC), Baseline.parse("version:1.4.0"), version="1.5.0",
        )  # fmt: skip
    assert got["headline"]["runs"]["now"] == expected.current.total
    assert got["headline"]["runs"]["baseline"] == expected.before.total
    assert json.loads(done["implied"].stdout)["version"] == "1.5.0"  # the newest other version
    assert "version 1.5.0 only" in done["table"].stdout
    assert "compared with version 1.4.0 in the same window" in done["table"].stdout
    for key, said in (("itself", "is the baseline's version"), ("absent", "no run of version 9.9"),
                      ("empty", "unknown baseline")):  # fmt: skip
        assert done[key].returncode == 2, done[key].stdout
        assert said in one_error_line(done[key])
