"""Log text is operator-controlled: never markup, never raw terminal codes; colours on ttys only."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.cli.helpers import as_json, create_schema, repository, stratlog

HOSTILE = "[bold red]boom[/bold red]"
MESSAGE = "db said [link=http://x]no[/link] \x1b[2J\x1b[31mred | <b>x</b> :smile:\nsecond line"
CASE = "*case* | `tick` <img src=x>"
AT = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
async def hostile_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('hostile') / 'h.db'}"
    base = {"strategyId": HOSTILE, "durationMs": 5.0, "nodes": 10, "createdAt": AT}
    rows = [
        {**base, "status": "error", "errorCode": "E[red]X[/red]", "errorMessage": MESSAGE},
        {**base, "status": "ok", "caseName": CASE, "points": 1.0,
         "inputPayload": {"note": "[blink]hi[/blink] \x1b[5m", "ü": "ä"}},
    ]  # fmt: skip
    await create_schema(url)
    async with repository(url) as repo:
        await repo.insert_many(rows)
    return url


def _ids(url: str) -> list[int]:
    done = stratlog("--database", url, "failures", HOSTILE, "--json")
    return [r["id"] for r in json.loads(done.stdout)]


def test_failures_shows_markup_literally_and_escapes_controls(hostile_url: str):
    done = stratlog("--database", hostile_url, "failures", HOSTILE)
    assert done.returncode == 0, done.stderr
    assert HOSTILE in done.stdout and "E[red]X[/red]" in done.stdout
    assert "[link=http://x]no[/link]" in done.stdout
    assert "\x1b" not in done.stdout and "\\x1b[2J" in done.stdout


def test_show_prints_the_message_and_payload_verbatim(hostile_url: str):
    [row_id] = _ids(hostile_url)
    done = stratlog("--database", hostile_url, "show", str(row_id))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "db said [link=http://x]no[/link] \\x1b[2J\\x1b[31mred | <b>x</b> :smile:" in done.stdout
    assert "second line" in done.stdout


async def test_show_json_keeps_the_stored_text(hostile_url: str):
    [row_id] = _ids(hostile_url)
    done = stratlog("--database", hostile_url, "show", str(row_id), "--json")
    async with repository(hostile_url) as repo:
        row = await repo.get(row_id)
    assert row is not None and json.loads(done.stdout) == as_json(row.to_dict())
    assert json.loads(done.stdout)["errorMessage"] == MESSAGE


def test_summary_shows_case_names_literally(hostile_url: str):
    done = stratlog("--database", hostile_url, "summary", HOSTILE, "--since", "3650d")
    assert done.returncode == 0, done.stderr
    assert CASE in done.stdout and HOSTILE in done.stdout


def test_snapshot_markdown_escapes_log_text(hostile_url: str, tmp_path: Path):
    window = ("--since", "2026-03-01T06:00", "--until", "2026-03-01T07:00")
    done = stratlog("--database", hostile_url, "snapshot", HOSTILE, *window,
                    "--out", str(tmp_path), "--name", "h")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "h.zip") as archive:
        text = archive.read("snapshot.md").decode()
    assert r"# Incident snapshot: \[bold red\]boom\[\/bold red\]" in text
    assert r"| \*case\* \| \`tick\` \<img src\=x\> | 1 |" in text
    assert re.search(r"(?<!\\)<", text) is None  # every "<" escaped: no HTML


def test_colours_only_on_a_terminal_and_never_with_no_color(hostile_url: str):
    args = ("--database", hostile_url, "failures", HOSTILE)
    forced = stratlog(*args, env={"FORCE_COLOR": "1", "COLORTERM": "truecolor"})
    assert "\x1b[38;2;213;94;0m" in forced.stdout  # status "error" in its fixed vermillion
    no_color = stratlog(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[38;" not in no_color.stdout and "error" in no_color.stdout
