"""docs/cli.md: every command in its console blocks prints exactly the output shown there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
SKIPPED = ("export ", "stratlog demo ")  # the fixture built the same database


def examples() -> dict[str, list[str]]:
    """Each ``$ command`` of the console blocks with the output lines shown below it."""
    found: dict[str, list[str]] = {}
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), flags=re.DOTALL):
        command = None
        for line in block.splitlines():
            if line.startswith("$ "):
                command = None if line[2:].startswith(SKIPPED) else line[2:]
                if command is not None:
                    found[command] = []
            elif command is not None:
                found[command].append(line)
    return found


def _run(command: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env["STRATLOG_DATABASE_URL"] = url
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def outputs(
    demo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every documented command, run at once on the demo database."""
    cwd = tmp_path_factory.mktemp("docs")
    wanted = [c for c in examples() if "| jq" not in c or shutil.which("jq")]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        runs = {c: pool.submit(_run, c, demo_url, cwd) for c in wanted}
        return {command: future.result() for command, future in runs.items()}


def test_the_doc_has_a_worked_example_for_every_read_command():
    commands = " ".join(examples())
    for name in ("strategies", "summary", "failures", "show", "snapshot"):
        assert f"stratlog {name} " in commands or commands.endswith(f"stratlog {name}")
    assert len(examples()) >= 8


@pytest.mark.parametrize("command", list(examples()))
def test_console_block_output_is_the_real_output(
    command: str, outputs: dict[str, subprocess.CompletedProcess[str]]
):
    if command not in outputs:
        pytest.skip("jq is not installed")
    done = outputs[command]
    assert done.returncode == 0, done.stderr
    shown = [line.rstrip() for line in examples()[command]]
    assert [line.rstrip() for line in done.stdout.splitlines()] == shown
