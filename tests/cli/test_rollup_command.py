"""`stratlog rollup`: folds rows in, changes no answer, refuses an outdated schema."""

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
