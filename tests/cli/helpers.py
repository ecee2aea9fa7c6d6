"""Helpers for command-line tests: run the console script, build the demo database, compare JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stratlog.db import make_engine, make_session_factory, upgrade
from stratlog.repository.strategy_execution_log_repository import StrategyExecutionLogRepository

DEMO_END = "2026-03-01T12:00:00+00:00"
#: The fraud-screen incident of that demo: the hour starting 6 h before the end.
SPIKE_SINCE = datetime(2026, 3, 1, 6, tzinfo=UTC)
SPIKE_UNTIL = datetime(2026, 3, 1, 7, tzinfo=UTC)
SPIKE = ("--since", "2026-03-01T06:00:00Z", "--until", "2026-03-01T07:00:00Z")


def stratlog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``stratlog`` script like an operator would (stdout is a pipe)."""
    exe = Path(sys.executable).parent / "stratlog"
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRATLOG_")}
    base.pop("FORCE_COLOR", None)
    base.pop("NO_COLOR", None)
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
    )


def make_demo(path: Path) -> str:
    """Write the small deterministic demo database at ``path``; returns its URL."""
    url = f"sqlite+aiosqlite:///{path}"
    done = stratlog("--database", url, "demo", "--rows", "5000", "--days", "2",
                    "--end", DEMO_END, "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 5,000 demo rows" in done.stdout
    return url


@asynccontextmanager
async def repository(url: str) -> AsyncIterator[StrategyExecutionLogRepository]:
    """The repository on ``url``, in this process (to compare with what the script printed)."""
    engine = make_engine(url)
    try:
        yield StrategyExecutionLogRepository(make_session_factory(engine))
    finally:
        await engine.dispose()


async def create_schema(url: str) -> None:
    """Bring the database at ``url`` to the newest schema, in this process."""
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def as_json(value: Any) -> Any:
    """``value`` as the script's ``--json`` prints it: datetimes become ISO-8601 strings."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()))


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """Assert stderr holds exactly one line and no traceback; return that line."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def run_all(
    cases: dict[str, list[str]], env: dict[str, str] | None = None
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run several independent invocations at once (each is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {key: pool.submit(stratlog, *args, env=env) for key, args in cases.items()}
        return {key: future.result() for key, future in futures.items()}
