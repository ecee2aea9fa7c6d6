"""One deterministic demo database for every command-line test (built once per run)."""

from __future__ import annotations

import pytest

from tests.cli.helpers import make_demo


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a 5,000-row, two-day demo database ending 2026-03-01 12:00 UTC."""
    return make_demo(tmp_path_factory.mktemp("cli-demo") / "demo.db")
