"""Every repository method, on SQLite and on a real PostgreSQL (the `repo` fixture's params)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stratlog.model import StrategyExecutionLog
from stratlog.repository import StrategyExecutionLogRepository
from stratlog.schemas import StrategyExecutionLogCreate
from tests.conftest import T0, make_row

HOSTILE = "x'; DROP TABLE strategy_execution_log; -- \" OR 1=1 /* SELECT * */ %s %(x)s ?"


async def test_insert_row_persists_and_get_returns_it(empty_repo: StrategyExecutionLogRepository):
    row = StrategyExecutionLog(**make_row(inputPayload={"a": [1, 2, {"b": None}]}))
    await empty_repo.insert_row(row)
    assert row.id is not None
    got = await empty_repo.get(row.id)
    assert got is not None
    assert got.to_dict() == {**make_row(inputPayload={"a": [1, 2, {"b": None}]}), "id": row.id}
    assert got.createdAt.tzinfo is not None and got.createdAt.utcoffset() == timedelta(0)


async def test_get_unknown_id_is_none(empty_repo: StrategyExecutionLogRepository):
    assert await empty_repo.get(123456789) is None


async def test_create_from_pydantic_schema(empty_repo: StrategyExecutionLogRepository):
    schema = StrategyExecutionLogCreate(**make_row(status="error", errorCode="E", points=None))
    row = await empty_repo.create(schema)
    assert row.id is not None
    got = await empty_repo.get(row.id)
    assert got is not None and got.errorCode == "E" and got.status == "error"


async def test_none_payloads_are_sql_null(empty_repo: StrategyExecutionLogRepository):
    await empty_repo.insert_many([make_row(inputPayload=None, outputPayload=None)])
    (row,) = await empty_repo.list_for_strategy(strategyId="credit-limit")
    assert row.inputPayload is None and row.outputPayload is None


async def test_non_utc_aware_times_are_stored_as_utc(empty_repo: StrategyExecutionLogRepository):
    plus2 = timezone(timedelta(hours=2))
    await empty_repo.insert_many([make_row(createdAt=datetime(2026, 3, 1, 14, 0, tzinfo=plus2))])
    (row,) = await empty_repo.list_for_strategy(strategyId="credit-limit")
    assert row.createdAt == T0 and row.createdAt.tzinfo == UTC


async def test_naive_created_at_is_refused(empty_repo: StrategyExecutionLogRepository):
    with pytest.raises(Exception, match="naive datetime"):
        await empty_repo.insert_row(
            StrategyExecutionLog(**make_row(createdAt=datetime(2026, 1, 1)))
        )


async def test_list_newest_first_ties_by_id_desc(empty_repo: StrategyExecutionLogRepository):
    await empty_repo.insert_many(
        [make_row(requestId=f"r{i}", createdAt=T0 + timedelta(seconds=i // 2)) for i in range(6)]
    )
    rows = await empty_repo.list_for_strategy(strategyId="credit-limit")
    keys = [(r.createdAt, r.id) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert [r.requestId for r in rows] == ["r5", "r4", "r3", "r2", "r1", "r0"]


async def test_list_status_filter_and_limit(empty_repo: StrategyExecutionLogRepository):
    rows = [make_row(status="error", errorCode="E", points=None) for _ in range(3)]
    await empty_repo.insert_many([*rows, make_row(), make_row()])
    errors = await empty_repo.list_for_strategy(strategyId="credit-limit", status="error")
    assert len(errors) == 3 and {r.status for r in errors} == {"error"}
    assert len(await empty_repo.list_for_strategy(strategyId="credit-limit", limit=2)) == 2


async def test_list_limit_is_clamped_to_200(empty_repo: StrategyExecutionLogRepository):
    await empty_repo.insert_many(
        [make_row(createdAt=T0 + timedelta(seconds=i)) for i in range(250)]
    )
    rows = await empty_repo.list_for_strategy(strategyId="credit-limit", limit=10_000)
    assert len(rows) == 200
    assert rows[0].createdAt == T0 + timedelta(seconds=249)


@pytest.mark.parametrize("limit", [0, -1, -500])
async def test_limit_below_one_raises(empty_repo: StrategyExecutionLogRepository, limit: int):
    with pytest.raises(ValueError, match="at least 1"):
        await empty_repo.list_for_strategy(strategyId="s", limit=limit)
    with pytest.raises(ValueError, match="at least 1"):
        await empty_repo.count_by_error_code(strategyId="s", limit=limit)
    with pytest.raises(ValueError, match="at least 1"):
        await empty_repo.sample_durations(strategyId="s", limit=limit)


async def test_unknown_status_filter_raises(empty_repo: StrategyExecutionLogRepository):
    with pytest.raises(ValueError, match="unknown status 'broken'"):
        await empty_repo.list_for_strategy(strategyId="s", status="broken")


async def test_reversed_window_names_both_values(empty_repo: StrategyExecutionLogRepository):
    since, until = T0 + timedelta(hours=1), T0
    for call in (
        empty_repo.count_by_status,
        empty_repo.count_by_error_code,
        empty_repo.count_by_case_name,
        empty_repo.duration_and_nodes_summary,
        empty_repo.sample_durations,
        empty_repo.sample_points,
        empty_repo.timeseries,
    ):
        with pytest.raises(ValueError) as info:
            await call(strategyId="s", sinceDt=since, untilDt=until)
        assert since.isoformat() in str(info.value) and until.isoformat() in str(info.value)


async def test_window_edges_since_inclusive_until_exclusive(
    empty_repo: StrategyExecutionLogRepository,
):
    stamps = [T0 - timedelta(microseconds=1), T0, T0 + timedelta(hours=1)]
    await empty_repo.insert_many([make_row(createdAt=t) for t in stamps])
    window = {"sinceDt": T0, "untilDt": T0 + timedelta(hours=1)}
    assert await empty_repo.count_by_status(strategyId="credit-limit", **window) == {"ok": 1}
    summary = await empty_repo.duration_and_nodes_summary(strategyId="credit-limit", **window)
    assert summary["count"] == 1


async def test_naive_window_bounds_mean_utc(empty_repo: StrategyExecutionLogRepository):
    await empty_repo.insert_many([make_row(createdAt=T0)])
    naive = T0.replace(tzinfo=None)
    got = await empty_repo.count_by_status(strategyId="credit-limit", sinceDt=naive)
    assert got == {"ok": 1}
    got = await empty_repo.count_by_status(strategyId="credit-limit", untilDt=naive)
    assert got == {}


async def test_hostile_strategy_id_matches_nothing_breaks_nothing(
    empty_repo: StrategyExecutionLogRepository,
):
    await empty_repo.insert_many([make_row()])
    assert await empty_repo.count_by_status(strategyId=HOSTILE) == {}
    assert await empty_repo.count_by_error_code(strategyId=HOSTILE) == []
    assert await empty_repo.list_for_strategy(strategyId=HOSTILE) == []
    assert await empty_repo.timeseries(strategyId=HOSTILE) == []
    assert (await empty_repo.duration_and_nodes_summary(strategyId=HOSTILE))["count"] == 0
    assert await empty_repo.count_by_status(strategyId="credit-limit") == {"ok": 1}
    await empty_repo.insert_many([make_row(strategyId=HOSTILE, caseName=HOSTILE)])
    assert await empty_repo.count_by_case_name(strategyId=HOSTILE) == [
        {"caseName": HOSTILE, "count": 1}
    ]


async def test_count_by_error_code_order_and_limit(empty_repo: StrategyExecutionLogRepository):
    codes = ["B"] * 3 + ["A"] * 3 + ["C"] * 5 + ["D"]
    rows = [make_row(status="error", errorCode=c, points=None) for c in codes]
    await empty_repo.insert_many([*rows, make_row()])
    got = await empty_repo.count_by_error_code(strategyId="credit-limit", limit=3)
    assert got == [
        {"errorCode": "C", "count": 5},
        {"errorCode": "A", "count": 3},
        {"errorCode": "B", "count": 3},
    ]


async def test_count_by_case_name_null_bucket_last_on_ties(
    empty_repo: StrategyExecutionLogRepository,
):
    names = [None, None, "b", "b", "a", "a", "Z", "é"]
    await empty_repo.insert_many([make_row(caseName=n) for n in names])
    got = await empty_repo.count_by_case_name(strategyId="credit-limit")
    assert got == [
        {"caseName": "a", "count": 2},
        {"caseName": "b", "count": 2},
        {"caseName": None, "count": 2},
        {"caseName": "Z", "count": 1},
        {"caseName": "é", "count": 1},
    ]


async def test_count_by_case_name_of_ok_runs_leaves_failed_runs_out(
    empty_repo: StrategyExecutionLogRepository, engine
):
    """The fallthrough is an ok run with no case; a failed run has no case either."""
    from stratlog.rollups import RollupJob

    ok = [make_row(caseName=None), make_row(caseName=None), make_row(caseName="a")]
    failed = [make_row(status=s, errorCode="E", caseName=None, points=None)
              for s in ("error", "error", "timeout", "limit")]  # fmt: skip
    await empty_repo.insert_many([*ok, *failed])
    await RollupJob(engine).catch_up()  # whole day from the rollups, plus raw rows after it
    await empty_repo.insert_many([make_row(caseName=None), failed[0]])
    day = {"strategyId": "credit-limit", "sinceDt": T0 - timedelta(hours=12),
           "untilDt": T0 + timedelta(hours=12)}  # fmt: skip
    assert await empty_repo.count_by_case_name(**day) == [
        {"caseName": None, "count": 8},
        {"caseName": "a", "count": 1},
    ]  # the seed's grouping: every run
    assert await empty_repo.count_by_case_name(**day, status="ok") == [
        {"caseName": None, "count": 3},
        {"caseName": "a", "count": 1},
    ]
    with pytest.raises(ValueError, match="unknown status"):
        await empty_repo.count_by_case_name(**day, status="fine")


async def test_summary_empty_window(empty_repo: StrategyExecutionLogRepository):
    got = await empty_repo.duration_and_nodes_summary(strategyId="nothing")
    assert got["count"] == 0
    assert all(value is None for key, value in got.items() if key != "count")
    assert set(got) == {
        "count", "avgDurationMs", "minDurationMs", "maxDurationMs", "sumDurationMs",
        "avgNodes", "minNodes", "maxNodes", "sumNodes", "sumPoints",
    }  # fmt: skip


async def test_summary_values(empty_repo: StrategyExecutionLogRepository):
    await empty_repo.insert_many(
        [
            make_row(durationMs=1.0, nodes=10, points=2.5),
            make_row(durationMs=3.0, nodes=30, points=None, status="error", errorCode="E"),
        ]
    )
    got = await empty_repo.duration_and_nodes_summary(strategyId="credit-limit")
    assert got == {
        "count": 2, "avgDurationMs": 2.0, "minDurationMs": 1.0, "maxDurationMs": 3.0,
        "sumDurationMs": 4.0, "avgNodes": 20.0, "minNodes": 10, "maxNodes": 30,
        "sumNodes": 40, "sumPoints": 2.5,
    }  # fmt: skip
    assert isinstance(got["sumNodes"], int) and isinstance(got["avgNodes"], float)


async def test_samples_are_bounded_and_complete_when_small(
    empty_repo: StrategyExecutionLogRepository,
):
    rows = [make_row(durationMs=float(i), points=None if i % 2 else float(i)) for i in range(1200)]
    await empty_repo.insert_many(rows)
    assert len(await empty_repo.sample_durations(strategyId="credit-limit", limit=5000)) == 1000
    points = await empty_repo.sample_points(strategyId="credit-limit", limit=1000)
    assert sorted(points) == [float(i) for i in range(0, 1200, 2)]


async def test_sample_in_a_small_window_is_exactly_its_rows(
    empty_repo: StrategyExecutionLogRepository,
):
    rows = [make_row(durationMs=float(i), createdAt=T0 + timedelta(seconds=i)) for i in range(1500)]
    await empty_repo.insert_many(rows)
    window = {"sinceDt": T0 + timedelta(seconds=100), "untilDt": T0 + timedelta(seconds=400)}
    durations = await empty_repo.sample_durations(strategyId="credit-limit", **window)
    assert sorted(durations) == [float(i) for i in range(100, 400)]


async def test_timeseries_buckets_sorted_and_aligned(empty_repo: StrategyExecutionLogRepository):
    stamps = [T0 + timedelta(minutes=m) for m in (0, 1, 59, 60, 61, 125)]
    rows = [make_row(createdAt=t) for t in stamps]
    rows.append(make_row(createdAt=T0 + timedelta(minutes=61), status="error", errorCode="E"))
    await empty_repo.insert_many(rows)
    got = await empty_repo.timeseries(strategyId="credit-limit", bucketSeconds=3600)
    assert got == [
        {"bucketStart": T0, "status": "ok", "count": 3},
        {"bucketStart": T0 + timedelta(hours=1), "status": "error", "count": 1},
        {"bucketStart": T0 + timedelta(hours=1), "status": "ok", "count": 2},
        {"bucketStart": T0 + timedelta(hours=2), "status": "ok", "count": 1},
    ]
    odd = await empty_repo.timeseries(strategyId="credit-limit", bucketSeconds=7)
    assert all(int(b["bucketStart"].timestamp()) % 7 == 0 for b in odd)
    with pytest.raises(ValueError, match="bucketSeconds"):
        await empty_repo.timeseries(strategyId="credit-limit", bucketSeconds=0)


async def test_list_strategies(empty_repo: StrategyExecutionLogRepository):
    later = T0 + timedelta(days=1)
    await empty_repo.insert_many(
        [
            make_row(strategyId="b"),
            make_row(strategyId="a"),
            make_row(strategyId="b", createdAt=later),
        ]
    )
    assert await empty_repo.list_strategies() == [
        {"strategyId": "a", "count": 1, "lastCreatedAt": T0},
        {"strategyId": "b", "count": 2, "lastCreatedAt": later},
    ]


async def test_empty_table_answers(empty_repo: StrategyExecutionLogRepository):
    assert await empty_repo.list_strategies() == []
    assert await empty_repo.count_by_status(strategyId="x") == {}
    assert await empty_repo.sample_points(strategyId="x") == []
    assert await empty_repo.insert_many([]) == 0


async def test_timeseries_bucket_of_a_time_just_before_the_boundary(
    empty_repo: StrategyExecutionLogRepository,
):
    # SQLite parses times to the millisecond and rounds: 59.9996 s must still be minute 0.
    await empty_repo.insert_many([make_row(createdAt=T0 + timedelta(seconds=59.9996))])
    got = await empty_repo.timeseries(strategyId="credit-limit", bucketSeconds=60)
    assert got == [{"bucketStart": T0, "status": "ok", "count": 1}]


async def seed_runbook(repo: StrategyExecutionLogRepository) -> None:
    rows = []
    for i in range(30):
        failed = i % 3 == 0
        rows.append(
            make_row(
                requestId=f"r{i}",
                status="error" if failed else "ok",
                errorCode=("E1" if i % 2 else "E2") if failed else None,
                caseName=None if failed or i % 5 == 0 else "prime",
                points=None if failed else 1.0,
                createdAt=T0 + timedelta(minutes=i // 2),  # pairs share a timestamp
            )
        )
    await repo.insert_many(rows)


async def test_list_runs_filters_window_and_keyset(empty_repo: StrategyExecutionLogRepository):
    await seed_runbook(empty_repo)
    scope = {"strategyId": "credit-limit"}
    errors = await empty_repo.list_runs(**scope, status="error", errorCode="E1")
    assert [r.requestId for r in errors] == ["r27", "r21", "r15", "r9", "r3"]
    window = {"sinceDt": T0 + timedelta(minutes=2), "untilDt": T0 + timedelta(minutes=5)}
    in_window = await empty_repo.list_runs(**scope, **window, limit=200)
    assert [r.requestId for r in in_window] == ["r9", "r8", "r7", "r6", "r5", "r4"]
    no_rule = await empty_repo.list_runs(**scope, caseIsNull=True, status="ok")
    assert {r.requestId for r in no_rule} == {"r5", "r10", "r20", "r25"}
    prime = await empty_repo.list_runs(**scope, caseName="prime", limit=3)
    first = [r.requestId for r in prime]
    rest = await empty_repo.list_runs(
        **scope, caseName="prime", before=(prime[-1].createdAt, prime[-1].id), limit=200
    )
    everything = await empty_repo.list_runs(**scope, caseName="prime", limit=200)
    assert first + [r.requestId for r in rest] == [r.requestId for r in everything]
    with pytest.raises(ValueError, match="exclude"):
        await empty_repo.list_runs(**scope, caseName="x", caseIsNull=True)


async def test_neighbours_follow_the_filters(empty_repo: StrategyExecutionLogRepository):
    await seed_runbook(empty_repo)
    errors = await empty_repo.list_runs(strategyId="credit-limit", status="error")
    ids = [r.id for r in errors]  # newest first
    middle = ids[2]
    got = await empty_repo.neighbours(middle, strategyId="credit-limit", status="error")
    assert got == (ids[1], ids[3])
    assert await empty_repo.neighbours(ids[0], strategyId="credit-limit", status="error") == (
        None,
        ids[1],
    )
    everything = [r.id for r in await empty_repo.list_runs(strategyId="credit-limit", limit=200)]
    at = everything.index(middle)
    assert await empty_repo.neighbours(middle, strategyId="credit-limit") == (
        everything[at - 1],
        everything[at + 1],
    )
    assert await empty_repo.neighbours(10**9, strategyId="credit-limit") == (None, None)


@pytest.mark.parametrize("seconds", [60, 3600, 86400, 25920])
async def test_bucket_edges_are_exact_one_microsecond_apart(
    empty_repo: StrategyExecutionLogRepository, seconds: int
):
    """PostgreSQL buckets with double-precision epoch seconds: a run 1 us before an edge must
    still fall in the bucket before it, from 1800 to 2200 and before 1970 too."""
    epoch, size = datetime(1970, 1, 1, tzinfo=UTC), timedelta(seconds=seconds)
    edges = [
        epoch + (datetime(year, 6, 1, tzinfo=UTC) - epoch) // size * size
        for year in (1800, 1969, 1970, 2026, 2199)
    ]
    stamps = [t for edge in edges for t in (edge - timedelta(microseconds=1), edge)]
    await empty_repo.insert_many([make_row(createdAt=t) for t in stamps])
    got = await empty_repo.timeseries(strategyId="credit-limit", bucketSeconds=seconds)
    expected = sorted(epoch + (t - epoch) // size * size for t in stamps)  # integer arithmetic
    assert [b["bucketStart"] for b in got for _ in range(b["count"])] == expected
    assert all(b["count"] == 1 for b in got)
