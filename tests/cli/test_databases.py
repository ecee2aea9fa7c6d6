"""Database trouble: unreachable, missing, without the table; reads never create or migrate."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import one_error_line, run_all, stratlog
from tests.net import free_port

UNREACHABLE = ("strategies", "snapshot")  # every read shares the connection code
READS = [
    ["strategies"],
    ["summary", "fraud-screen"],
    ["failures", "fraud-screen"],
    ["show", "1"],
    ["snapshot", "fraud-screen", "--since", "1h", "--out", "never-written"],
]


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every read command on an unreachable, a missing and a foreign database, run at once."""
    base = tmp_path_factory.mktemp("broken")
    missing, foreign = base / "absent.db", base / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    urls = {
        "unreachable": f"postgresql+asyncpg://reader:s3cret@127.0.0.1:{free_port()}/audit",
        "missing": f"sqlite+aiosqlite:///{missing}",
        "foreign": f"sqlite+aiosqlite:///{foreign}",
    }
    cases = {f"{kind} {' '.join(args)}": ["--database", url, *args]
             for kind, url in urls.items() for args in READS
             if kind != "unreachable" or args[0] in UNREACHABLE}  # fmt: skip
    return {"runs": run_all(cases), "missing": missing, "foreign": foreign}


@pytest.mark.parametrize("args", [" ".join(a) for a in READS if a[0] in UNREACHABLE])
def test_unreachable_database_exits_1_with_the_cause_and_no_password(
    args: str, broken: dict[str, Any]
):
    done = broken["runs"][f"unreachable {args}"]
    assert done.returncode == 1
    line = one_error_line(done)
    assert line.startswith("stratlog: error: cannot reach the database")
    assert "reader:***@127.0.0.1" in line and "s3cret" not in done.stderr
    assert "Connect call failed" in line or "refused" in line


@pytest.mark.parametrize("args", [" ".join(a) for a in READS])
def test_reads_on_a_missing_sqlite_file_create_nothing(args: str, broken: dict[str, Any]):
    done = broken["runs"][f"missing {args}"]
    assert done.returncode == 1
    assert f"no SQLite database at {broken['missing']}" in one_error_line(done)
    assert not broken["missing"].exists()
    assert not (Path.cwd() / "never-written").exists()


@pytest.mark.parametrize("args", [" ".join(a) for a in READS])
def test_reads_on_a_database_without_the_table_leave_it_alone(args: str, broken: dict[str, Any]):
    done = broken["runs"][f"foreign {args}"]
    assert done.returncode == 1
    line = one_error_line(done)
    assert "no stratlog table in this database" in line and "run `stratlog db upgrade`" in line
    with sqlite3.connect(broken["foreign"]) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"unrelated"}


def test_db_upgrade_creates_the_schema_and_reads_then_work(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    done = stratlog("--database", url, "db", "upgrade")
    assert done.returncode == 0 and "newest revision" in done.stdout
    empty = stratlog("--database", url, "strategies")
    assert empty.returncode == 0 and "the log is empty" in empty.stdout
    unknown = stratlog("--database", url, "summary", "fraud-screen")
    assert unknown.returncode == 2
    assert "unknown strategy 'fraud-screen': the log is empty" in one_error_line(unknown)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("foo://bar", "bad database URL"),
        ("not a url", "bad database URL"),
        ("postgresql://u:pw@localhost/x", "driver 'psycopg"),
    ],
)
def test_unusable_database_urls_exit_2(url: str, fragment: str):
    done = stratlog("--database", url, "strategies")
    assert done.returncode == 2
    line = one_error_line(done)
    assert fragment in line and "pw@" not in line
