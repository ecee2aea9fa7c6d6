"""``stratlog insights`` on the full demo (14 days, 200,000 rows, folded into the rollups): every
planted story is found, the steady strategy yields nothing, the JSON has the issue's shape, and
bad arguments are one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.helpers import DEMO_END, one_error_line, run_all, stratlog

WINDOW = ("--since", "2026-02-28T12:00:00Z", "--until", DEMO_END)
#: What the demo plants in its last day, per strategy (docs/insights.md, "On the demo").
PLANTED = {
    "credit-limit": {("dormant_case", "young_applicant"), ("fallthrough_shift", None)},
    "fraud-screen": {("spiking_error_code", "UPSTREAM_UNAVAILABLE")},
    "kyc-depth": {("node_budget_headroom", "nodes"), ("nodes_shift", "nodes"),
                  ("failure_payload_lift", "inputPayload.applicant.country=GB")},
    "pricing-tier": {("new_error_code", "TIER_TABLE_STALE"), ("suspect_version", "1.5.0"),
                     ("duration_shift", "durationMs"), ("points_shift", "points"),
                     ("case_mix_shift", "caseName")},
    "promo-eligibility": set(),
}  # fmt: skip
KINDS = {
    "new_error_code", "spiking_error_code", "dormant_case", "fallthrough_shift",
    "case_mix_shift", "points_shift", "duration_shift", "nodes_shift", "failure_payload_lift",
    "node_budget_headroom", "suspect_version",
}  # fmt: skip


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('insights-demo') / 'demo.db'}"
    done = stratlog("--database", url, "demo", "--rows", "200000", "--days", "14",
                    "--end", DEMO_END, "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert stratlog("--database", url, "rollup").returncode == 0
    return url


@pytest.fixture(scope="module")
def runs(full_demo: str) -> dict[str, subprocess.CompletedProcess[str]]:
    cases = {s: ["--database", full_demo, "insights", s, *WINDOW, "--json"] for s in PLANTED}
    cases["text"] = ["--database", full_demo, "insights", "kyc-depth", *WINDOW]
    cases["steady text"] = ["--database", full_demo, "insights", "promo-eligibility", *WINDOW]
    cases["previous"] = ["--database", full_demo, "insights", "pricing-tier", *WINDOW,
                         "--baseline", "previous", "--json"]  # fmt: skip
    return run_all(cases)


@pytest.mark.parametrize("strategy", list(PLANTED))
def test_every_planted_story_is_found_and_the_steady_strategy_has_none(runs, strategy: str):
    done = runs[strategy]
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert set(got) == {"strategyId", "since", "until", "baseline", "runs", "baselineRuns",
                        "findings", "checked"}  # fmt: skip
    assert got["strategyId"] == strategy and set(got["baseline"]) == {"since", "until"}
    assert got["baseline"] == {"since": "2026-02-21T12:00:00+00:00",
                               "until": "2026-02-28T12:00:00+00:00"}  # fmt: skip
    found = {(f["kind"], f["subject"]) for f in got["findings"]}
    assert PLANTED[strategy] <= found, found
    if not PLANTED[strategy]:
        assert found == set()
        assert len(got["checked"]) >= 5
    rank = {"critical": 0, "warning": 1, "info": 2}
    keys = [(rank[f["severity"]], -f["score"]) for f in got["findings"]]
    assert keys == sorted(keys)
    for f in got["findings"]:
        assert set(f) == {"kind", "subject", "severity", "score", "summary", "evidence"}
        assert f["kind"] in KINDS and f["summary"].endswith(".")


def test_the_demo_shows_every_kind_at_least_once(runs):
    kinds = {f["kind"] for s in PLANTED for f in json.loads(runs[s].stdout)["findings"]}
    assert kinds == KINDS


def test_the_table_and_the_empty_state(runs):
    text = runs["text"]
    assert text.returncode == 0, text.stderr
    assert "node_budget_headroom" in text.stdout and "against the 7 days before" in text.stdout
    steady = runs["steady text"].stdout
    assert "nothing unusual" in steady and "failing runs' payloads" in steady


def test_another_baseline(runs):
    got = json.loads(runs["previous"].stdout)
    assert got["baseline"] == {"since": "2026-02-27T12:00:00+00:00",
                               "until": "2026-02-28T12:00:00+00:00"}  # fmt: skip


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["insights", "kyc-depth", "--baseline", "version:2.0.0"], "unknown insights baseline"),
        (["insights", "kyc-depth", "--node-budget", "0"], "must be at least 1"),
        (["insights", "no-such-strategy"], "no-such-strategy"),
        (["insights", "kyc-depth", "--since", "yesterday"], "--since"),
    ],
)
def test_bad_arguments_are_one_line_errors(full_demo: str, args: list[str], says: str):
    done = stratlog("--database", full_demo, *args)
    assert done.returncode == 2
    assert says in one_error_line(done)


def test_the_snapshot_holds_the_findings(full_demo: str, tmp_path: Path):
    import zipfile

    done = stratlog("--database", full_demo, "snapshot", "fraud-screen", *WINDOW, "--out",
                    str(tmp_path), "--name", "inc")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "inc.zip") as archive:
        names = set(archive.namelist())
        assert {"findings.csv", "insights.json", "snapshot.md"} <= names
        document = archive.read("snapshot.md").decode()
        found = json.loads(archive.read("insights.json"))
    assert "## Insights" in document and "spiking_error_code" in document
    assert found["findings"][0]["subject"] == "UPSTREAM_UNAVAILABLE"
