"""Every read command through the console script, compared with the repository on the same file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stratlog.cli.parser import LIST_LIMIT_MAX
from stratlog.cli.reading import fetch_failures
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.service.stats import percentiles
from stratlog.timewindow import Window
from tests.cli.helpers import (
    SPIKE,
    SPIKE_SINCE,
    SPIKE_UNTIL,
    as_json,
    one_error_line,
    repository,
    run_all,
    stratlog,
)
from tests.conftest import T0, make_row

Runs = dict[str, subprocess.CompletedProcess[str]]
FAILED = ("error", "timeout", "limit")
SPIKE_ARGS = " ".join(SPIKE)
#: The read invocations of this module (``{error_id}`` / ``{promo_id}`` filled in at run time).
READS = [
    "strategies --json",
    f"summary fraud-screen {SPIKE_ARGS} --json",
    "summary kyc-depth --since 3650d --json",
    f"summary fraud-screen {SPIKE_ARGS}",
    "summary credit-limit --since 3650d",
    "failures kyc-depth --limit 200 --json",
    "failures fraud-screen --status error --limit 7 --json",
    f"failures fraud-screen {SPIKE_ARGS} --json",
    "failures fraud-screen --limit 5",
    "failures pricing-tier --status limit",
    "show {error_id} --json",
    "show {promo_id}",
]


@pytest.fixture(scope="module")
async def runs(demo_url: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every read invocation of this module, run concurrently once, by its argument string."""
    async with repository(demo_url) as repo:
        [error] = await repo.list_for_strategy(strategyId="fraud-screen", status="error", limit=1)
        [promo] = await repo.list_for_strategy(strategyId="promo-eligibility", limit=1)
    ids = {"error_id": error.id, "promo_id": promo.id}
    return run_all({k: ["--database", demo_url, *k.format(**ids).split()] for k in READS})


async def test_strategies_json_equals_the_repository(demo_url: str, runs: Runs):
    done = runs["strategies --json"]
    assert done.returncode == 0, done.stderr
    async with repository(demo_url) as repo:
        expected = await repo.list_strategies()
    assert json.loads(done.stdout) == as_json(expected)
    assert [i["strategyId"] for i in expected] == [
        "credit-limit", "fraud-screen", "kyc-depth", "pricing-tier", "promo-eligibility",
    ]  # fmt: skip
    assert sum(i["count"] for i in expected) == 5000


async def test_strategies_table_from_the_environment_url(demo_url: str):
    done = stratlog("strategies", env={"STRATLOG_DATABASE_URL": demo_url})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["strategy", "rows", "last", "seen", "(UTC)"]
    async with repository(demo_url) as repo:
        items = await repo.list_strategies()
    for line, item in zip(lines[1:], items, strict=True):
        last = item["lastCreatedAt"].strftime("%Y-%m-%d %H:%M:%S")
        assert line.split() == [item["strategyId"], f"{item['count']:,}", *last.split()]


async def test_summary_json_equals_the_repository(demo_url: str, runs: Runs):
    done = runs[f"summary fraud-screen {SPIKE_ARGS} --json"]
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    scope = {"strategyId": "fraud-screen", "sinceDt": SPIKE_SINCE, "untilDt": SPIKE_UNTIL}
    async with repository(demo_url) as repo:
        summary = await repo.duration_and_nodes_summary(**scope)
        durations = percentiles(await repo.sample_durations(**scope), summary["count"])
        expected = {
            "statusCounts": await repo.count_by_status(**scope),
            "errorCodes": await repo.count_by_error_code(**scope),
            "caseNames": await repo.count_by_case_name(**scope, status="ok"),
            "summary": summary,
            "timeseries": await repo.timeseries(**scope, bucketSeconds=got["bucketSeconds"]),
        }
    assert {key: got[key] for key in expected} == as_json(expected)
    assert (got["since"], got["until"]) == (SPIKE_SINCE.isoformat(), SPIKE_UNTIL.isoformat())
    assert got["durations"]["exact"] is True and got["durations"]["p95"] == durations.p95
    assert got["durations"]["basis"] == f"exact, over all {summary['count']} runs"
    assert got["errorCodes"][0]["errorCode"] == "UPSTREAM_UNAVAILABLE"


async def test_summary_relative_since_covers_the_whole_log(demo_url: str, runs: Runs):
    done = runs["summary kyc-depth --since 3650d --json"]
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    async with repository(demo_url) as repo:
        assert got["statusCounts"] == await repo.count_by_status(strategyId="kyc-depth")
    assert got["statusCounts"]["limit"] > 0
    since, until = (datetime.fromisoformat(got[k]) for k in ("since", "until"))
    assert abs((until - datetime.now(UTC)).total_seconds()) < 60
    assert round((until - since).total_seconds() / 86400) == 3650


async def test_summary_tables_show_the_repository_figures(demo_url: str, runs: Runs):
    done = runs[f"summary fraud-screen {SPIKE_ARGS}"]
    assert done.returncode == 0, done.stderr
    scope = {"strategyId": "fraud-screen", "sinceDt": SPIKE_SINCE, "untilDt": SPIKE_UNTIL}
    async with repository(demo_url) as repo:
        status = await repo.count_by_status(**scope)
        codes = await repo.count_by_error_code(**scope)
        cases = await repo.count_by_case_name(**scope, status="ok")  # the fallthrough: ok runs
    sections = {part.splitlines()[0]: part.splitlines()[2:] for part in done.stdout.split("\n\n")}
    by_status = {line.split()[0]: line.split()[1] for line in sections["Runs by status"]}
    assert by_status == {name: f"{status.get(name, 0):,}" for name in STATUSES}
    top = sections["Top error codes"][0].split()
    assert top[:2] == ["UPSTREAM_UNAVAILABLE", str(codes[0]["count"])]
    none_bucket = next(c["count"] for c in cases if c["caseName"] is None)
    assert re.search(rf"^no rule matched \(defaultPoints\) +{none_bucket} ", done.stdout, re.M)
    assert "exact, over all" in done.stdout and "p95" in done.stdout
    assert "\x1b" not in done.stdout  # no colours when stdout is not a terminal


async def test_summary_says_how_exact_the_percentiles_are(demo_url: str, runs: Runs):
    done = runs["summary credit-limit --since 3650d"]
    assert done.returncode == 0, done.stderr
    async with repository(demo_url) as repo:
        total = sum((await repo.count_by_status(strategyId="credit-limit")).values())
    assert total > 1000
    basis = next(line for line in done.stdout.splitlines() if line.startswith("duration (ms)"))
    assert basis.endswith(f"exact, over all {total:,} runs")


async def test_failures_default_lists_every_failed_status_newest_first(demo_url: str, runs: Runs):
    done = runs["failures kyc-depth --limit 200 --json"]
    assert done.returncode == 0, done.stderr
    async with repository(demo_url) as repo:
        lists = [await repo.list_for_strategy(strategyId="kyc-depth", status=s, limit=200)
                 for s in FAILED]  # fmt: skip
    merged = sorted((r for rows in lists for r in rows), key=lambda r: (r.createdAt, r.id))[::-1]
    got = json.loads(done.stdout)
    assert got == as_json([r.to_dict() for r in merged[:200]])
    assert {r["status"] for r in got} == {"error", "limit"}


async def test_failures_of_one_status_equal_list_for_strategy(demo_url: str, runs: Runs):
    done = runs["failures fraud-screen --status error --limit 7 --json"]
    assert done.returncode == 0, done.stderr
    async with repository(demo_url) as repo:
        rows = await repo.list_for_strategy(strategyId="fraud-screen", status="error", limit=7)
    assert json.loads(done.stdout) == as_json([r.to_dict() for r in rows])


async def test_failures_in_the_spike_window(demo_url: str, runs: Runs):
    done = runs[f"failures fraud-screen {SPIKE_ARGS} --json"]
    assert done.returncode == 0, done.stderr
    async with repository(demo_url) as repo:
        rows = await repo.list_for_strategy(strategyId="fraud-screen", status="error", limit=200)
        status = await repo.count_by_status(
            strategyId="fraud-screen", sinceDt=SPIKE_SINCE, untilDt=SPIKE_UNTIL
        )
    expected = [r.to_dict() for r in rows if SPIKE_SINCE <= r.createdAt < SPIKE_UNTIL]
    got = json.loads(done.stdout)
    assert got == as_json(expected) and len(got) == status["error"]
    assert {r["errorCode"] for r in got} == {"UPSTREAM_UNAVAILABLE"}


async def test_failures_reach_a_window_behind_hundreds_of_newer_failures(
    empty_repo: StrategyExecutionLogRepository,
):
    old = [make_row(status="error", errorCode="OLD", points=None, caseName=None,
                    createdAt=T0 + timedelta(minutes=i)) for i in range(3)]  # fmt: skip
    newer = [make_row(status=s, errorCode="NEW", points=None, caseName=None,
                      createdAt=T0 + timedelta(days=1, seconds=i))
             for i in range(LIST_LIMIT_MAX + 50) for s in ("error", "timeout")]  # fmt: skip
    await empty_repo.insert_many(old + newer)
    window = Window(T0, T0 + timedelta(hours=1))
    found = await fetch_failures(empty_repo, "credit-limit", FAILED, 50, window)
    assert [(r.errorCode, r.createdAt) for r in found] == [
        ("OLD", T0 + timedelta(minutes=i)) for i in (2, 1, 0)
    ]
    newest = await fetch_failures(empty_repo, "credit-limit", FAILED, 3, None)
    assert [r.status for r in newest] == ["timeout", "error", "timeout"]


async def test_failures_table_is_the_runbook(demo_url: str, runs: Runs):
    done = runs["failures fraud-screen --limit 5"]
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("fraud-screen: the 5 newest runs with status error, timeout or")
    assert lines[1].split()[:4] == ["id", "created", "(UTC)", "status"]
    async with repository(demo_url) as repo:
        rows = await repo.list_for_strategy(strategyId="fraud-screen", status="error", limit=5)
    assert [int(line.split()[0]) for line in lines[2:]] == [r.id for r in rows]


def test_failures_says_so_when_there_are_none(runs: Runs):
    done = runs["failures pricing-tier --status limit"]
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pricing-tier: no runs with status limit"


async def test_show_json_equals_the_repository(demo_url: str, runs: Runs):
    async with repository(demo_url) as repo:
        [row] = await repo.list_for_strategy(strategyId="fraud-screen", status="error", limit=1)
    done = runs["show {error_id} --json"]
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == as_json(row.to_dict())


async def test_show_prints_every_field_and_pretty_payloads(demo_url: str, runs: Runs):
    async with repository(demo_url) as repo:
        [row] = await repo.list_for_strategy(strategyId="promo-eligibility", limit=1)
    done = runs["show {promo_id}"]
    assert done.returncode == 0, done.stderr
    head = done.stdout.split("input payload")[0].splitlines()[1:]
    fields = {line.split()[0]: line.split(None, 1)[1].strip() for line in head if line.strip()}
    assert fields["id"] == str(row.id) and fields["requestId"] == row.requestId
    assert fields["status"] == row.status
    payload = done.stdout.split("input payload")[1].split("output payload")[0]
    assert json.loads(payload) == row.inputPayload
    assert '\n  "applicant": {\n    "age": ' in payload  # indented, one key per line


#: Bad invocations and a fragment of the one line each must print (exit code 2).
BAD_ARGUMENTS = {
    "summary fraud": "unknown strategy 'fraud': did you mean 'fraud-screen'?",
    "failures nope": "unknown strategy 'nope'",
    "snapshot nope --since 2h --out x": "unknown strategy 'nope'",
    "summary fraud-screen --since yesterday": "expected a relative time",
    "summary fraud-screen --until 2026-13-01": "ISO-8601",
    "summary fraud-screen --since 1h --until 2h": "ends before it starts",
    "failures fraud-screen --since 2026-03-02 --until 2026-03-01": "ends before it starts",
    "failures fraud-screen --limit 0": "between 1 and 200",
    "failures fraud-screen --limit 201": "between 1 and 200",
    "failures fraud-screen --limit ten": "expected a whole number",
    "failures fraud-screen --status ok": "invalid choice",
    "show 999999": "no row with id 999999",
    "show abc": "expected a whole number",
    "show 0": "must be at least 1",
    "summary fraud-screen --top -1": "must be at least 1",
    "snapshot fraud-screen --out x": "required: --since",
    "snapshot fraud-screen --since 2h --out x --name ../up": "plain file name",
    "summary": "required: STRATEGY",
    "frobnicate": "invalid choice",
    "demo --rows -5": "must be at least 1",
    "demo --days 0": "must be positive",
    "demo --end yesterday-ish": "expected a relative time",
    "db": "required: ACTION",
}


@pytest.fixture(scope="module")
def bad_runs(demo_url: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every bad invocation, run concurrently once."""
    return run_all({args: ["--database", demo_url, *args.split()] for args in BAD_ARGUMENTS})


@pytest.mark.parametrize("args", list(BAD_ARGUMENTS))
def test_bad_arguments_exit_2_with_one_line(
    args: str, bad_runs: dict[str, subprocess.CompletedProcess[str]]
):
    done = bad_runs[args]
    assert done.returncode == 2, done.stderr
    line = one_error_line(done)
    assert line.startswith("stratlog") and "error:" in line and BAD_ARGUMENTS[args] in line
    assert done.stdout == ""


def test_database_option_after_the_command(demo_url: str):
    done = stratlog("strategies", "--database", demo_url, "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 5


def test_every_command_has_help_with_examples():
    commands = ["strategies", "summary", "compare", "failures", "find", "show", "snapshot",
                "demo", "db", "db upgrade"]  # fmt: skip
    runs = run_all({c: [*c.split(), "--help"] for c in commands} | {"": ["--help"]})
    for command in commands:
        assert runs[command].returncode == 0, runs[command].stderr
        assert "examples:\n  stratlog " + command.split()[0] in runs[command].stdout
    assert runs[""].returncode == 0 and "examples:" in runs[""].stdout
    assert "exit codes:" in runs[""].stdout


def test_the_cli_agrees_with_the_repository_cap_and_the_dashboard_colours():
    from stratlog.cli import parser, reading, render
    from stratlog.repository.strategy_execution_log_repository import LIST_LIMIT_MAX
    from stratlog.vocabulary import STATUS_COLORS

    assert parser.LIST_LIMIT_MAX == LIST_LIMIT_MAX
    assert {s: str(render.status_cell(s).style) for s in STATUS_COLORS} == STATUS_COLORS
    assert tuple(s for s in STATUSES if s != "ok") == reading.FAILURE_STATUSES


def test_a_closed_pipe_ends_quietly(demo_url: str):
    exe = Path(sys.executable).parent / "stratlog"
    args = [str(exe), "--database", demo_url, "failures", "kyc-depth", "--json"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the first byte is written
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert code == 0 and err == b""
