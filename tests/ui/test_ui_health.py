"""AppTest: the Health page (recorder counters, rollup freshness, empty states, failures)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from stratlog.rollups import RollupJob
from stratlog.service.health import HealthRow, publish
from stratlog.ui.bridge import Backend

OpenApp = Callable[..., AppTest]
HEALTH = "pages/health.py"


def metric(at: AppTest, label: str) -> str:
    """The displayed value of the metric with this label."""
    return next(str(m.value) for m in at.metric if m.label == label)


def test_before_any_recorder_reports(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, HEALTH, strategy="credit-limit")
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Health"]
    assert any("No recorder has reported yet" in i.value for i in at.info)
    assert any("rollup job has not run" in i.value for i in at.info)
    assert not at.dataframe


def test_recorder_counters_and_rollup_freshness(
    open_app: OpenApp, demo_url: str, tmp_path: Path, backend_for: Any
) -> None:
    copy = tmp_path / "health.db"
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), copy)
    url = f"sqlite+aiosqlite:///{copy}"
    backend: Backend = backend_for(url)
    backend.run(RollupJob(backend.engine).catch_up())
    now = datetime.now(UTC)
    factory = backend.repository.session_factory
    rows = [
        HealthRow("scorer-a:11", "buffered", 1000, 950, 30, 15, 5, "<b>timeout</b>", now),
        HealthRow("scorer-b:12", "awaited", 400, 400, 0, 0, 0, None, now - timedelta(hours=1)),
    ]
    for row in rows:
        backend.run(publish(factory, row))
    at = open_app(url, HEALTH)
    assert not at.exception and not at.error
    assert metric(at, "Recorders") == "2"
    assert metric(at, "Written") == "1,350" and metric(at, "Dropped") == "30"
    assert metric(at, "Failed") == "15" and metric(at, "Pending") == "5"
    table = at.dataframe[0].value
    assert list(table["Recorder"]) == ["scorer-a:11", "scorer-b:12"]  # newest report first
    assert table["Last error"].iloc[0] == "<b>timeout</b>"  # a cell, never markup
    assert table["Age"].iloc[1].endswith("(stale)") and "stale" not in table["Age"].iloc[0]
    assert metric(at, "Ids above the watermark") == "0"
    assert metric(at, "Watermark (run id)") == metric(at, "Newest run id")


def test_health_works_on_an_empty_log(open_app: OpenApp, empty_url: str) -> None:
    at = open_app(empty_url, HEALTH)
    assert not at.exception
    assert [t.value for t in at.title] == ["Health"]
    assert any("No recorder has reported yet" in i.value for i in at.info)
    overview = open_app(empty_url)
    assert [t.value for t in overview.title] == ["No runs recorded yet"]
    assert "Health page" in overview.info[0].value


def test_health_with_the_database_down(open_app: OpenApp, down_url: str) -> None:
    at = open_app(down_url, HEALTH)
    assert not at.exception
    assert "Cannot reach the database" in at.error[0].value


def test_health_says_which_process_served_it(
    open_app: OpenApp, demo_url: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STRATLOG_WORKER", "2/4")
    at = open_app(demo_url, HEALTH)
    served = [c.value for c in at.caption if c.value.startswith("Served by")]
    assert len(served) == 1
    assert served[0].startswith("Served by dashboard process 2/4 · pid ")
    assert f"pid {os.getpid()} " in served[0]  # AppTest runs the page in this process
    monkeypatch.delenv("STRATLOG_WORKER")
    alone = open_app(demo_url, HEALTH)
    assert any(c.value.startswith("Served by dashboard process (single)") for c in alone.caption)
