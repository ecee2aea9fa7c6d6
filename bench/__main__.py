"""Run every benchmark module in this folder, one after the other, each in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    """Run `bench/bench_*.py` (or the names given) and return the worst exit code."""
    here = Path(__file__).parent
    wanted = sys.argv[1:]
    scripts = sorted(p for p in here.glob("bench_*.py") if not wanted or p.stem in wanted)
    worst = 0
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        done = subprocess.run([sys.executable, "-m", f"bench.{script.stem}"], cwd=here.parent)
        worst = max(worst, done.returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
