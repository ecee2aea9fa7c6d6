"""The `stratlog` console script, through a subprocess like an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import free_port


def stratlog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "stratlog"
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('cli') / 'demo.db'}"
    done = stratlog("--database", url, "demo", "--rows", "3000", "--days", "2", "--seed", "1",
                    "--end", "2026-03-01T12:00:00+00:00", "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 3,000 demo rows" in done.stdout
    return url


def test_strategies_json_matches_the_data(demo_url: str):
    done = stratlog("--database", demo_url, "strategies", "--json")
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)
    assert [i["strategyId"] for i in items] == [
        "credit-limit", "fraud-screen", "kyc-depth", "pricing-tier", "promo-eligibility",
    ]  # fmt: skip
    assert sum(i["count"] for i in items) == 3000
    assert all(i["lastCreatedAt"] < "2026-03-01T12:00:00" for i in items)


def test_strategies_table_uses_the_environment_url(demo_url: str):
    done = stratlog("strategies", env={"STRATLOG_DATABASE_URL": demo_url})
    assert done.returncode == 0
    assert done.stdout.splitlines()[0].split() == ["strategy", "rows", "last", "seen", "(UTC)"]
    assert "credit-limit" in done.stdout


def test_db_upgrade_on_a_new_file(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    done = stratlog("--database", url, "db", "upgrade")
    assert done.returncode == 0 and "newest revision" in done.stdout
    assert (tmp_path / "new.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--rows", "-5"],
        ["demo", "--rows", "many"],
        ["demo", "--days", "0"],
        ["demo", "--end", "yesterday-ish"],
        ["frobnicate"],
        ["db"],
    ],
)
def test_bad_arguments_exit_2_without_traceback(args: list[str], tmp_path: Path):
    done = stratlog("--database", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "error" in done.stderr


def test_unreachable_database_exits_1_with_cause():
    url = f"postgresql+asyncpg://reader:s3cret@127.0.0.1:{free_port()}/audit"
    done = stratlog("--database", url, "strategies")
    assert done.returncode == 1
    assert "cannot reach the database" in done.stderr and "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr


def test_help_has_examples():
    done = stratlog("--help")
    assert done.returncode == 0 and "examples:" in done.stdout
