"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl on a free port, as `postgres`."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.net import free_port


def pg_bindir() -> Path:
    """Where the server binaries are: `pg_config --bindir`, else Debian's versioned folders."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: run `make test` (installs them)")
    return Path(found[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; `start()`, `stop()`, `url`."""

    def __init__(self, standby_of: PostgresServer | None = None) -> None:
        """A new cluster (initdb), or with ``standby_of`` a streaming standby of that running
        server: ``pg_basebackup -R`` (its data, and the settings that make it follow)."""
        self.bindir = pg_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="stratlog-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        if standby_of is not None:
            self._run("pg_basebackup", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
                      "-h", "127.0.0.1", "-p", str(standby_of.port), "-U", "postgres")  # fmt: skip
            return
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")  # fmt: skip

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()}\n{log[-2000:]}")
        return result

    @property
    def url(self) -> str:
        """The asyncpg URL of the `postgres` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, settings: dict[str, str] | None = None) -> None:
        """Start the server (fsync off: the data is thrown away) and wait until it accepts."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        options += "".join(f" -c {k}={v}" for k, v in (settings or {}).items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def create_database(self, name: str) -> str:
        """``createdb name``; the asyncpg URL of the new database."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; running clients get cut off (``fast`` keeps committed data)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        """Stop if running and delete the cluster."""
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
