"""Finding runs: by request id across strategies (an index lookup), by version, by a payload
field; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stratlog.repository import StrategyExecutionLogRepository
from tests.conftest import T0, make_row

PAYLOADS = [
    {"applicant": {"country": "BR", "age": 40, "vip": True}, "channel": "web"},
    {"applicant": {"country": "AR", "age": 40.5, "vip": False}, "channel": "app"},
    {"applicant": {"country": "BR"}, "channel": None, "dotted.key": "x"},
    None,
]


@pytest.fixture
async def seeded(empty_repo: StrategyExecutionLogRepository) -> StrategyExecutionLogRepository:
    rows = [
        make_row(strategyId=sid, requestId=f"req-{i % 3}", strategyVersion=version,
                 inputPayload=PAYLOADS[i % 4], createdAt=T0 + timedelta(minutes=i))
        for i, (sid, version) in enumerate(
            [("a", "1.0"), ("a", "1.1"), ("b", None), ("a", None), ("b", "1.1"), ("a", "1.1")]
        )
    ]  # fmt: skip
    await empty_repo.insert_many(rows)
    return empty_repo


async def test_find_request_spans_every_strategy_newest_first(
    seeded: StrategyExecutionLogRepository,
):
    found = await seeded.find_request(requestId="req-1")
    assert [(r.strategyId, r.createdAt) for r in found] == [
        ("b", T0 + timedelta(minutes=4)),
        ("a", T0 + timedelta(minutes=1)),
    ]
    assert await seeded.find_request(requestId="req-9") == []
    assert await seeded.find_request(requestId="x" * 10_000) == []  # a 10 kB id is a value
    assert len(await seeded.find_request(requestId="req-0", limit=1)) == 1


async def test_runs_by_version_and_without_one(seeded: StrategyExecutionLogRepository):
    def minutes(rows):
        return [int((r.createdAt - T0).total_seconds() // 60) for r in rows]

    got = await seeded.list_runs(strategyId="a", strategyVersion="1.1")
    assert minutes(got) == [5, 1]
    assert minutes(await seeded.list_runs(strategyId="a", versionIsNull=True)) == [3]
    assert minutes(await seeded.list_runs(strategyId="a", requestId="req-0")) == [3, 0]
    with pytest.raises(ValueError, match="exclude"):
        await seeded.list_runs(strategyId="a", strategyVersion="1.1", versionIsNull=True)
    with pytest.raises(TypeError, match="unknown run filter"):
        await seeded.list_runs(strategyId="a", flavour="x")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["applicant", "country"], "BR", {0, 2}),
        (["applicant", "country"], "AR", {1}),
        (["applicant", "age"], "40", {0}),
        (["applicant", "vip"], "true", {0}),
        (["applicant", "vip"], "false", {1}),
        (["channel"], "web", {0}),
        (["dotted.key"], "x", {2}),
        (["channel"], "null", set()),  # JSON null is no value
        (["missing"], "BR", set()),
    ],
)
async def test_runs_by_one_payload_field(
    seeded: StrategyExecutionLogRepository, path: list[str], value: str, expected: set[int]
):
    rows = []
    for sid in ("a", "b"):
        rows += await seeded.list_runs(strategyId=sid, payloadPath=path, payloadValue=value)
    assert {PAYLOADS.index(r.inputPayload) for r in rows} == expected


async def test_the_request_lookup_is_an_index_scan_on_postgresql(
    seeded: StrategyExecutionLogRepository, engine: AsyncEngine
):
    if engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    async with engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))  # a tiny table would be scanned
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text("EXPLAIN SELECT * FROM strategy_execution_log WHERE request_id = 'req-1'")
            )
        )
    # Plain: the table's index. Partitioned: each partition's copy of it (named after the
    # partition by PostgreSQL), one index scan per partition, none a sequential scan.
    scans = re.findall(
        r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)(?: using \S+)? on", plan
    )
    # (A bitmap scan of the same index is as good; the planner picks it on a table that had
    # many rows deleted by earlier tests.)
    used = re.findall(
        r"(?:Index Scan using|Index Only Scan using|Bitmap Index Scan on) (\S+)", plan
    )
    assert scans and "Seq Scan" not in scans, plan
    assert used and all("request_id" in name for name in used), plan
