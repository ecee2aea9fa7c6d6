"""``stratlog find`` and the runbook filters of ``stratlog failures``, via the console script."""

from __future__ import annotations

import json

from tests.cli.helpers import one_error_line, repository, run_all


async def test_find_lists_a_request_in_every_strategy_and_failures_filter(demo_url: str):
    async with repository(demo_url) as repo:
        [run] = await repo.list_for_strategy(strategyId="kyc-depth", limit=1)
        [stale] = await repo.list_runs(strategyId="pricing-tier", errorCode="TIER_TABLE_STALE",
                                       limit=1)  # fmt: skip
    country = stale.inputPayload["applicant"]["country"]
    done = run_all(
        {
            k: ["--database", demo_url, *v]
            for k, v in {
                "find": ["find", str(run.requestId), "--json"],
                "table": ["find", str(run.requestId)],
                "none": ["find", "req-nope"],
                "filtered": [
                    "failures",
                    "pricing-tier",
                    "--version",
                    "1.5.0",
                    "--field",
                    f"applicant.country={country}",
                    "--json",
                ],
                "old": ["failures", "pricing-tier", "--version", "1.4.0", "--json"],
                "bad": ["failures", "pricing-tier", "--field", "country"],
            }.items()
        }
    )
    for key in ("find", "table", "none", "filtered", "old"):
        assert done[key].returncode == 0, done[key].stderr
    found = json.loads(done["find"].stdout)
    assert [(r["id"], r["strategyId"]) for r in found] == [(run.id, "kyc-depth")]
    assert "kyc-depth" in done["table"].stdout
    assert "no run has the request id" in done["none"].stdout
    filtered = json.loads(done["filtered"].stdout)
    assert stale.id in {r["id"] for r in filtered}
    assert all(r["strategyVersion"] == "1.5.0" for r in filtered)
    assert all(r["inputPayload"]["applicant"]["country"] == country for r in filtered)
    assert "TIER_TABLE_STALE" not in {r["errorCode"] for r in json.loads(done["old"].stdout)}
    assert done["bad"].returncode == 2
    assert "expected PATH=VALUE" in one_error_line(done["bad"])
