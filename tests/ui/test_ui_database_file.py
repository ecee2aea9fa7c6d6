"""The dashboard reads: a missing SQLite file is reported on every page, never recreated empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ui.conftest import OpenApp

PAGES = (None, "pages/runbook.py", "pages/row.py", "pages/health.py")


@pytest.mark.parametrize("page", PAGES)
def test_a_file_moved_away_is_reported_and_not_recreated(
    open_app: OpenApp, demo_url: str, tmp_path: Path, page: str | None
) -> None:
    path = tmp_path / "audit.db"
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), path)
    url = f"sqlite+aiosqlite:///{path}"
    before = open_app(url, page, strategy="credit-limit", row="1")
    assert not before.exception and not before.error  # pooled connections are open now
    path.rename(tmp_path / "moved.db")  # the file goes while the dashboard runs
    gone = open_app(url, page, strategy="credit-limit", row="1")
    assert not gone.exception
    (error,) = gone.error
    assert "No database file at" in error.value and "never creates" in error.value
    assert "stratlog db upgrade" in error.value
    assert any(f"no database file at {path}" in c.value for c in gone.code)
    assert not path.exists()  # no new, empty database took its place
    (tmp_path / "moved.db").rename(path)  # back again: no restart needed
    back = open_app(url, page, strategy="credit-limit", row="1")
    assert not back.exception and not back.error


def test_the_dashboard_does_not_migrate_an_old_file(
    open_app: OpenApp, demo_url: str, tmp_path: Path
) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), path)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE stratlog_recorder_health")
        db.execute("UPDATE alembic_version SET version_num = '0002'")
    at = open_app(f"sqlite+aiosqlite:///{path}", "pages/health.py")
    assert not at.exception and "stratlog db upgrade" in at.error[0].value
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
