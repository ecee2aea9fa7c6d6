"""Several dashboard processes behind nginx, with sticky sessions (issue 17).

A Streamlit process keeps each session's state, its download files and its caches in its own
memory, so every request of a browser must reach the process that holds its session: the
websocket, and the ``/media/...`` GETs of its PNG, CSV and zip downloads. Open-source nginx has
no ``sticky`` directive; the layout here pins a browser to the process that answered it:

- every response sets the cookie ``stratlog_worker`` to the process that answered (``w1``,
  ``w2``... from ``$upstream_addr``), the websocket's ``101`` included;
- a request with that cookie goes to that process's own upstream; one without it to the least
  busy process (``least_conn``);
- when the pinned process is down, nginx's ``502`` goes to a fallback location that asks the
  others; the one that answers is named in the cookie from then on, so the websocket (which
  Streamlit's client reconnects, to a new session from the same link) and the later ``/media/``
  downloads stay together on one process, also after the first one is back.

:func:`site_config` is the ``http``-level include for people who run their own nginx;
:func:`standalone_config` wraps it into a whole configuration for ``stratlog serve``, which
starts the processes and nginx (:class:`Supervisor`), restarts a process that dies and stops
everything on Ctrl-C or SIGTERM. Each process gets ``budget // workers`` database connections
(:func:`pool_size_for`), so N processes never hold more than the stated connection budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The cookie that pins a browser to one process.
AFFINITY_COOKIE = "stratlog_worker"
#: Environment variable a dashboard process reads to say which process it is (Health page).
WORKER_ENV = "STRATLOG_WORKER"
#: Where nginx usually is on Debian.
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
#: Streamlit settings of every process: production error display, no file watcher, loopback.
STREAMLIT_OPTIONS = (
    "--server.headless", "true", "--server.fileWatcherType", "none",
    "--browser.gatherUsageStats", "false", "--client.showErrorDetails", "none",
    "--server.enableXsrfProtection", "true",
)  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]


class ServeError(Exception):
    """A layout that cannot run (bad numbers, no nginx, a process that will not start)."""


def pool_size_for(workers: int, budget: int) -> int:
    """Database connections per process so that ``workers`` processes stay within ``budget``."""
    if workers < 1:
        raise ServeError(f"--workers must be at least 1, got {workers}")
    if budget < workers:
        raise ServeError(
            f"a connection budget of {budget} cannot give {workers} processes one connection "
            f"each: raise --connection-budget or lower --workers"
        )
    return budget // workers


@dataclass(frozen=True)
class Layout:
    """Where nginx listens and where the dashboard processes listen (ports in a row)."""

    workers: int = 2
    listen: str = "127.0.0.1"
    port: int = 8080
    first_worker_port: int = 8601
    connection_budget: int = 20

    def __post_init__(self) -> None:
        pool_size_for(self.workers, self.connection_budget)
        ports = [self.port, self.first_worker_port, self.first_worker_port + self.workers - 1]
        if not all(0 < p < 65536 for p in ports):
            raise ServeError(f"ports must be between 1 and 65535: {ports}")
        if self.first_worker_port <= self.port < self.first_worker_port + self.workers:
            raise ServeError(f"port {self.port} is also a dashboard process's port")

    @property
    def worker_ports(self) -> list[int]:
        return [self.first_worker_port + i for i in range(self.workers)]

    @property
    def pool_size(self) -> int:
        return pool_size_for(self.workers, self.connection_budget)


def _proxy_settings(indent: str) -> str:
    lines = (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $stratlog_connection;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "# A session's websocket lives for hours; Streamlit pings it every 30 s.",
        "proxy_read_timeout 1h;",
        "proxy_send_timeout 1h;",
        "# Downloads stream through; nothing is written to nginx's temporary files.",
        "proxy_buffering off;",
        "proxy_max_temp_file_size 0;",
        "proxy_connect_timeout 2s;",
        "# Pin the browser to the process that answered (on the websocket's 101 too).",
        'add_header Set-Cookie "$stratlog_set_cookie" always;',
    )
    return "\n".join(f"{indent}{line}" for line in lines)


def site_config(layout: Layout) -> str:
    """The ``http``-level nginx configuration: the pinning maps, the upstreams, the server."""
    ports = layout.worker_ports
    pins = "\n".join(f"    w{i + 1} stratlog_{i + 1};" for i in range(layout.workers))
    names = "\n".join(
        f'    "~(^|[ ,])127\\.0\\.0\\.1:{port}$" w{i + 1};' for i, port in enumerate(ports)
    )
    every = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports)
    each = "\n".join(
        f"upstream stratlog_{i + 1} {{\n    server 127.0.0.1:{port};\n}}"
        for i, port in enumerate(ports)
    )
    proxy = _proxy_settings("        ")
    return f"""\
# stratlog: {layout.workers} dashboard processes behind one nginx, each browser pinned to one.
# Include it in `http {{ }}`; start each process as `stratlog serve` does (stratlog/serve.py:
# STRATLOG_POOL_SIZE={layout.pool_size}, one shared STREAMLIT_SERVER_COOKIE_SECRET). Regenerate:
# stratlog serve --workers {layout.workers} --listen {layout.listen} --port {layout.port} \\
#   --worker-port {layout.first_worker_port} --connection-budget {layout.connection_budget} \\
#   --write-config FILE

# Websockets: pass the upgrade on, close plain requests as usual.
map $http_upgrade $stratlog_connection {{
    default upgrade;
    ''      close;
}}
# The process a browser is pinned to: its cookie names the one that answered it last.
map $cookie_{AFFINITY_COOKIE} $stratlog_upstream {{
    default stratlog_any;
{pins}
}}
# Which process answered (the last address nginx tried), as the cookie's value.
map $upstream_addr $stratlog_answered {{
    default "";
{names}
}}
map $stratlog_answered $stratlog_set_cookie {{
    ""      "";
    default "{AFFINITY_COOKIE}=$stratlog_answered; Path=/; HttpOnly; SameSite=Lax";
}}

# A new browser, or one whose process is down: the least busy process that answers.
upstream stratlog_any {{
    least_conn;
{every}
}}
# One upstream per process, for the pinned browsers.
{each}

server {{
    listen {layout.listen}:{layout.port};

    location / {{
        proxy_pass http://$stratlog_upstream;
{proxy}
        # The pinned process is down: another one, which the cookie names from then on.
        error_page 502 504 = @stratlog_failover;
    }}

    location @stratlog_failover {{
        proxy_pass http://stratlog_any;
{proxy}
        proxy_next_upstream error timeout http_502 http_503;
    }}
}}
"""


def _user_line() -> str:
    """nginx run as root drops its workers to ``nobody`` (with that user's own group)."""
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwnam("nobody")
    return f"user nobody {grp.getgrgid(user.pw_gid).gr_name};\n"


def standalone_config(layout: Layout, run_dir: Path) -> str:
    """A whole nginx configuration in the foreground, its files under ``run_dir``."""
    temp = "\n".join(
        f"    {kind}_temp_path {run_dir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    site = "\n".join(f"    {line}" if line else "" for line in site_config(layout).splitlines())
    return f"""\
{_user_line()}worker_processes 1;
daemon off;
pid {run_dir / "nginx.pid"};
error_log {run_dir / "error.log"} warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log {run_dir / "access.log"};
{temp}
{site}
}}
"""


def find_nginx(explicit: str | None = None) -> str:
    """The nginx binary: ``explicit`` (which must be there), on PATH, or where Debian puts it."""
    if explicit is not None:
        if os.access(explicit, os.X_OK) and not os.path.isdir(explicit):
            return explicit
        raise ServeError(f"--nginx {explicit}: no such executable")
    for candidate in (shutil.which("nginx"), *NGINX_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ServeError(
        "nginx not found: install it (Debian: apt-get install nginx; `make browser` does) or "
        "pass --nginx PATH"
    )


def worker_command(layout: Layout, index: int) -> list[str]:
    """``streamlit run dashboard.py`` for process ``index`` (0-based) of the layout."""
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
        "--server.port", str(layout.worker_ports[index]), "--server.address", "127.0.0.1",
        *STREAMLIT_OPTIONS,
    ]  # fmt: skip


def worker_env(layout: Layout, index: int, url: str, cookie_secret: str) -> dict[str, str]:
    """The environment of process ``index``: the database, its pool, who it is, the secret
    every process shares (Streamlit signs its session cookies with it), and two malloc arenas
    (glibc's default, 8 per core, lets each of Streamlit's script-run threads grow its own heap:
    the peak memory of a busy process, docs/operating.md)."""
    return {
        "MALLOC_ARENA_MAX": "2",
        **os.environ,
        "STRATLOG_DATABASE_URL": url,
        "STRATLOG_POOL_SIZE": str(layout.pool_size),
        WORKER_ENV: f"{index + 1}/{layout.workers}",
        "STREAMLIT_SERVER_COOKIE_SECRET": cookie_secret,
    }


def healthy(port: int, timeout: float = 1.0) -> bool:
    """Does the process on ``port`` answer Streamlit's health check?"""
    try:
        url = f"http://127.0.0.1:{port}/_stcore/health"
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@dataclass
class Supervisor:
    """Starts the processes and nginx, restarts a process that exits, stops them all."""

    layout: Layout
    url: str
    run_dir: Path
    nginx: str
    say: Callable[[str], None] = print
    start_timeout_s: float = 90.0
    restarts: int = 0
    workers: list[asyncio.subprocess.Process | None] = field(default_factory=list)
    proxy: asyncio.subprocess.Process | None = None
    _secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def log_of(self, index: int) -> Path:
        return self.run_dir / f"dashboard-{index + 1}.log"

    async def _start_worker(self, index: int) -> asyncio.subprocess.Process:
        sink = self.log_of(index).open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                *worker_command(self.layout, index), cwd=ROOT, stdout=sink, stderr=sink,
                env=worker_env(self.layout, index, self.url, self._secret),
            )  # fmt: skip
        finally:
            sink.close()

    async def _wait_healthy(self, index: int, process: asyncio.subprocess.Process) -> None:
        port = self.layout.worker_ports[index]
        deadline = time.monotonic() + self.start_timeout_s
        while not await asyncio.to_thread(healthy, port):
            if process.returncode is not None or time.monotonic() > deadline:
                tail = self.log_of(index).read_text(errors="replace")[-2000:]
                raise ServeError(
                    f"dashboard process {index + 1} (port {port}) did not start:\n{tail}"
                )
            await asyncio.sleep(0.3)

    async def start(self) -> None:
        """Every process up and healthy, then nginx; raises :class:`ServeError` on failure."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "nginx.conf"
        config.write_text(standalone_config(self.layout, self.run_dir))
        check = await asyncio.create_subprocess_exec(
            self.nginx, "-t", "-q", "-p", str(self.run_dir), "-e", str(self.run_dir / "error.log"),
            "-c", str(config), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await check.communicate()
        if check.returncode != 0:
            raise ServeError(f"nginx rejected {config}: {out.decode(errors='replace').strip()}")
        self.workers = [await self._start_worker(i) for i in range(self.layout.workers)]
        await asyncio.gather(*(self._wait_healthy(i, p) for i, p in enumerate(self.workers) if p))
        self.proxy = await asyncio.create_subprocess_exec(
            self.nginx, "-p", str(self.run_dir), "-e", str(self.run_dir / "error.log"),
            "-c", str(config),
        )  # fmt: skip

    async def watch(self, stop: asyncio.Event, poll_s: float = 0.5) -> int:
        """Restart a process that exits until ``stop`` is set; 1 if nginx itself exits."""
        while not stop.is_set():
            if self.proxy is not None and self.proxy.returncode is not None:
                tail = (self.run_dir / "error.log").read_text(errors="replace")[-1500:]
                self.say(f"nginx exited with code {self.proxy.returncode}:\n{tail}")
                return 1
            for index, process in enumerate(self.workers):
                if process is not None and process.returncode is not None:
                    self.restarts += 1
                    self.say(
                        f"dashboard process {index + 1} (port {self.layout.worker_ports[index]}) "
                        f"exited with code {process.returncode}: restarting it"
                    )
                    self.workers[index] = await self._start_worker(index)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
        return 0

    async def stop(self) -> None:
        """nginx first (no new requests), then every process; SIGKILL after 10 s."""
        every = (self.proxy, *self.workers)
        running = [p for p in every if p is not None and p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGQUIT if process is self.proxy else signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


async def serve(
    layout: Layout, url: str, run_dir: Path, nginx: str, say: Callable[[str], None] = print,
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
) -> int:  # fmt: skip
    """Run the layout until a signal; the exit code."""
    supervisor = Supervisor(layout, url, run_dir, nginx, say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        await supervisor.start()
        say(
            f"stratlog: {layout.workers} dashboard processes (ports "
            f"{layout.worker_ports[0]}-{layout.worker_ports[-1]}, {layout.pool_size} database "
            f"connections each, {layout.pool_size * layout.workers} of a budget of "
            f"{layout.connection_budget}) behind nginx at http://{layout.listen}:{layout.port}/ "
            f"(files in {run_dir}); Ctrl-C stops them"
        )
        return await supervisor.watch(stop)
    finally:
        await supervisor.stop()
        for number in signals:
            loop.remove_signal_handler(number)
        say(f"stratlog: stopped nginx and the dashboard processes ({supervisor.restarts} restarts)")
