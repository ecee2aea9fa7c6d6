"""``stratlog db upgrade`` and ``stratlog partitions`` on a real PostgreSQL, as run by operators."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from stratlog import partitions as parts
from tests.cli.helpers import make_demo, one_error_line, repository, stratlog
from tests.conftest import make_row

ScratchUrl = Callable[[str], Awaitable[str]]


async def test_upgrade_partitions_a_new_database_and_partitions_lists_and_creates(
    scratch_url: ScratchUrl,
) -> None:
    url = await scratch_url("postgres")
    done = stratlog("--database", url, "db", "upgrade", "--quiet")
    assert done.returncode == 0, done.stderr
    today = datetime.now(UTC).date()
    last = today + timedelta(days=parts.AHEAD_DAYS)
    assert f"audit table partitioned by day: 8 day partitions, the last for {last}" in done.stdout
    async with repository(url) as repo:
        await repo.insert_many([make_row(createdAt=datetime(2026, 2, 10, 9, tzinfo=UTC))])
    listed = stratlog("--database", url, "partitions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[-1] == {"name": parts.DEFAULT_PARTITION, "from": None, "to": None, "rows": 1}
    assert [r["name"] for r in rows[:-1]] == [
        parts.partition_name(today + timedelta(days=n)) for n in range(8)
    ]
    made = stratlog(
        "--database", url, "partitions", "create", "--from", "2026-02-09", "--to", "2026-02-11"
    )
    assert made.returncode == 0, made.stderr
    assert "created 3 day partitions (2026-02-09 to 2026-02-11, UTC)" in made.stdout
    table = stratlog("--database", url, "partitions", "list")
    assert table.returncode == 0, table.stderr
    assert parts.partition_name(date(2026, 2, 10)) in table.stdout
    assert "11 day partitions; 0 rows in the default partition (counted)" in table.stdout


async def test_a_plain_table_is_converted_from_the_command_line(scratch_url: ScratchUrl) -> None:
    url = await scratch_url("postgres")
    done = stratlog("--database", url, "db", "upgrade", "--no-partitions", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "audit table not partitioned" in done.stdout
    assert "`stratlog partitions convert`" in done.stdout
    refused = stratlog("--database", url, "partitions", "list")
    assert refused.returncode == 2
    assert "not partitioned" in one_error_line(refused)
    async with repository(url) as repo:
        start = datetime.now(UTC) - timedelta(days=3)
        await repo.insert_many([make_row(createdAt=start + timedelta(hours=h)) for h in range(60)])
    converted = stratlog("--database", url, "partitions", "convert", "--batch", "25", "--quiet")
    assert converted.returncode == 0, converted.stderr
    assert "converted: 60 rows copied into" in converted.stdout
    assert parts.UNPARTITIONED in converted.stdout
    again = stratlog("--database", url, "partitions", "convert", "--quiet")
    assert again.returncode == 0 and "partitioned already" in again.stdout
    listed = json.loads(stratlog("--database", url, "partitions", "list", "--json").stdout)
    assert listed[-1]["rows"] == 0  # every row in a day partition of its own


def test_partitions_on_sqlite_and_bad_ranges_are_refused(tmp_path: Path) -> None:
    url = make_demo(tmp_path / "demo.db")
    done = stratlog("--database", url, "partitions", "list")
    assert done.returncode == 2
    assert "PostgreSQL" in one_error_line(done)
    half = stratlog("--database", url, "partitions", "create", "--from", "2026-02-01")
    assert half.returncode == 2 and "--from and --to go together" in one_error_line(half)
    bad = stratlog("--database", url, "partitions", "create", "--from", "Feb", "--to", "x")
    assert bad.returncode == 2 and "not a date" in one_error_line(bad)
