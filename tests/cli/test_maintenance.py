"""Maintenance commands: rollup, prune, health (exit codes, and what they change)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli.helpers import SPIKE, one_error_line, stratlog

WHOLE = ("--since", "2026-02-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z")


def test_rollup_changes_no_answer(demo_url: str, tmp_path: Path):
    source = Path(demo_url.removeprefix("sqlite+aiosqlite:///"))
    copy = tmp_path / "copy.db"
    shutil.copy(source, copy)
    url = f"sqlite+aiosqlite:///{copy}"
    before = stratlog("--database", url, "summary", "fraud-screen", *WHOLE, "--json")
    spike_before = stratlog("--database", url, "summary", "fraud-screen", *SPIKE, "--json")
    done = stratlog("--database", url, "rollup", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "rolled up 5,000 rows" in done.stdout
    again = stratlog("--database", url, "rollup", "--quiet")
    assert "rolled up 0 rows" in again.stdout
    after = stratlog("--database", url, "summary", "fraud-screen", *WHOLE, "--json")
    spike_after = stratlog("--database", url, "summary", "fraud-screen", *SPIKE, "--json")

    def figures(text: str) -> dict[str, object]:
        data = json.loads(text)
        summary = data.pop("summary")
        data["summary"] = {
            k: round(v, 9) if isinstance(v, float) else v for k, v in summary.items()
        }
        return {k: v for k, v in data.items() if k != "fetchedAt"}

    assert figures(after.stdout) == figures(before.stdout)
    assert figures(spike_after.stdout) == figures(spike_before.stdout)


def test_rollup_on_a_missing_database_exits_1(tmp_path: Path):
    done = stratlog("--database", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", "rollup")
    assert done.returncode == 1
    assert "stratlog db upgrade" in one_error_line(done)


def test_prune_dry_run_then_prune(demo_url: str, tmp_path: Path):
    source = Path(demo_url.removeprefix("sqlite+aiosqlite:///"))
    copy = tmp_path / "prune.db"
    shutil.copy(source, copy)
    url = f"sqlite+aiosqlite:///{copy}"
    cutoff = "2026-03-01T00:00:00Z"  # the demo runs from 2026-02-27 12:00 to 2026-03-01 12:00
    dry = stratlog("--database", url, "prune", "--older-than", cutoff, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    would = int(dry.stdout.split()[2].replace(",", ""))
    assert 0 < would < 5000
    done = stratlog("--database", url, "prune", "--older-than", cutoff, "--batch", "500", "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"deleted {would:,} runs created before 2026-03-01 00:00:00 UTC" in done.stdout
    listed = json.loads(stratlog("--database", url, "strategies", "--json").stdout)
    assert sum(s["count"] for s in listed) == 5000 - would


def test_prune_needs_a_valid_cutoff(demo_url: str):
    done = stratlog("--database", demo_url, "prune", "--older-than", "soon")
    assert done.returncode == 2
    assert "--older-than" in one_error_line(done)


async def test_health_shows_published_counters(demo_url: str, tmp_path: Path):
    from stratlog.service import Recorder
    from stratlog.service.health import HealthPublisher
    from tests.cli.helpers import repository

    source = Path(demo_url.removeprefix("sqlite+aiosqlite:///"))
    copy = tmp_path / "health.db"
    shutil.copy(source, copy)
    url = f"sqlite+aiosqlite:///{copy}"
    empty = stratlog("--database", url, "health")
    assert empty.returncode == 0 and "no recorder has reported yet" in empty.stdout
    assert "rollups: never run on this database" in empty.stdout
    async with repository(url) as repo:
        recorder = Recorder(repo)
        await recorder.record("not a row")  # type: ignore[arg-type]
        assert await HealthPublisher(repo.session_factory, recorder, name="scorer-a").publish_now()
    done = stratlog("--database", url, "health", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    (row,) = answer["recorders"]
    assert (row["name"], row["submitted"], row["failed"], row["written"]) == ("scorer-a", 1, 1, 0)
    newest = answer["rollup"]["newestId"]
    assert newest > 0 and answer["rollup"]["watermark"] == 0
    assert answer["rollup"]["behind"] == newest and answer["rollup"]["updatedAt"] is None
    text = stratlog("--database", url, "health")
    assert "scorer-a" in text.stdout and "UnmappedInstanceError" in text.stdout
    assert stratlog("--database", url, "rollup").returncode == 0
    after = json.loads(stratlog("--database", url, "health", "--json").stdout)["rollup"]
    assert (after["watermark"], after["behind"]) == (newest, 0) and after["updatedAt"]
    text = stratlog("--database", url, "health")
    assert f"rollups: watermark at id {newest:,}, newest id {newest:,}, 0 ids behind" in text.stdout


def test_rollup_verify_reports_a_difference_and_repair_fixes_it(demo_url: str, tmp_path: Path):
    import sqlite3

    copy = tmp_path / "verify.db"
    shutil.copy(Path(demo_url.removeprefix("sqlite+aiosqlite:///")), copy)
    url = f"sqlite+aiosqlite:///{copy}"
    assert stratlog("--database", url, "rollup", "--quiet").returncode == 0
    clean = stratlog("--database", url, "rollup", "--verify")
    assert clean.returncode == 0 and clean.stdout.startswith("rollups match the raw rows")
    with sqlite3.connect(copy) as db:  # a hand-written DELETE below the watermark
        db.execute("DELETE FROM strategy_execution_log WHERE id = 42")
    found = stratlog("--database", url, "rollup", "--verify")
    assert found.returncode == 1
    assert "1 strategy-days differ" in found.stdout and "rebuilds them" in found.stdout
    fixed = stratlog("--database", url, "rollup", "--verify", "--repair")
    assert fixed.returncode == 0, fixed.stdout
    assert "rebuilt 1 strategy-days" in fixed.stdout
    assert fixed.stdout.rstrip().splitlines()[-1].startswith("rollups match the raw rows")
    misuse = stratlog("--database", url, "rollup", "--repair")
    assert misuse.returncode == 2 and "--verify" in one_error_line(misuse)
