"""The dashboard reads: a missing SQLite file is reported on every page, never recreated empty."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

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


def test_a_file_name_with_uri_characters_opens_that_file(
    open_app: OpenApp, demo_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "audit ?#%41 copy.db"  # would end a file: URI, or decode, unescaped
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), path)
    url = f"sqlite+aiosqlite:///{quote(str(path))}"  # how such a name is written in a URL
    at = open_app(url, strategy="credit-limit")
    assert not at.exception and not at.error
    beside = {p.name for p in tmp_path.iterdir()} - {f"{path.name}-wal", f"{path.name}-shm"}
    assert beside == {path.name}  # that file was opened, no stray one created beside it


def test_a_file_replaced_by_another_is_read_afresh(
    open_app: OpenApp, demo_url: str, empty_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    shutil.copy(empty_url.removeprefix("sqlite+aiosqlite:///"), path)
    url = f"sqlite+aiosqlite:///{path}"
    assert open_app(url).title[0].value == "No runs recorded yet"
    staged = tmp_path / "restored.db"
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), staged)
    staged.replace(path)  # a backup moved into place: same path, another file
    again = open_app(url, strategy="credit-limit")
    assert not again.exception and not again.error
    assert [t.value for t in again.title] == ["Overview"]
