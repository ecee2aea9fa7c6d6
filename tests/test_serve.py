"""The multi-process layout (stratlog/serve.py): pool sizing, the nginx configuration (checked
by the real nginx), the committed deploy/nginx/stratlog.conf and the ``stratlog serve`` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stratlog.cli.main import main
from stratlog.serve import (
    AFFINITY_COOKIE,
    WORKER_ENV,
    Layout,
    ServeError,
    find_nginx,
    healthy,
    pool_size_for,
    site_config,
    standalone_config,
    worker_command,
    worker_env,
)
from tests.net import free_ports_in_a_row

ROOT = Path(__file__).resolve().parents[1]
DEPLOYED = ROOT / "deploy" / "nginx" / "stratlog.conf"


def test_the_pool_of_each_process_keeps_the_sum_within_the_budget() -> None:
    for workers in range(1, 9):
        for budget in range(workers, 41):
            size = pool_size_for(workers, budget)
            assert size >= 1 and workers * size <= budget < workers * (size + 1)
    with pytest.raises(ServeError, match="cannot give 3 processes one connection"):
        pool_size_for(3, 2)
    with pytest.raises(ServeError, match="at least 1"):
        pool_size_for(0, 20)


def test_a_layout_refuses_ports_that_collide_or_do_not_exist() -> None:
    assert Layout(workers=3, first_worker_port=9000).worker_ports == [9000, 9001, 9002]
    with pytest.raises(ServeError, match="also a dashboard process's port"):
        Layout(workers=3, port=8602, first_worker_port=8601)
    with pytest.raises(ServeError, match="between 1 and 65535"):
        Layout(workers=2, first_worker_port=65535)


def test_the_site_config_pins_each_browser_and_passes_websockets_on() -> None:
    config = site_config(Layout(workers=3, port=9080, first_worker_port=9101))
    lines = [line.strip() for line in config.splitlines()]
    assert f"map $cookie_{AFFINITY_COOKIE} $stratlog_upstream {{" in lines
    assert [line for line in lines if line.startswith("w") and "stratlog_" in line] == [
        "w1 stratlog_1;",
        "w2 stratlog_2;",
        "w3 stratlog_3;",
    ]
    for number, port in enumerate((9101, 9102, 9103), start=1):
        assert f'"~(^|[ ,])127\\.0\\.0\\.1:{port}$" w{number};' in lines  # who answered
        assert f"upstream stratlog_{number} {{" in lines
    assert [line for line in lines if line.startswith("server 127.0.0.1:")] == [
        *(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in (9101, 9102, 9103)),
        *(f"server 127.0.0.1:{port};" for port in (9101, 9102, 9103)),
    ]
    assert "least_conn;" in lines  # a new browser: the least busy process
    assert lines.count("proxy_http_version 1.1;") == 2  # websockets need HTTP/1.1 upstream
    assert lines.count("proxy_set_header Connection $stratlog_connection;") == 2
    assert lines.count('add_header Set-Cookie "$stratlog_set_cookie" always;') == 2
    assert "error_page 502 504 = @stratlog_failover;" in lines
    assert "listen 127.0.0.1:9080;" in lines


def test_the_committed_config_is_what_the_command_writes() -> None:
    """deploy/nginx/stratlog.conf: four processes, the defaults otherwise."""
    assert DEPLOYED.read_text() == site_config(Layout(workers=4))


def test_real_nginx_accepts_the_standalone_config(tmp_path: Path) -> None:
    layout = Layout(workers=2, port=9180, first_worker_port=9181)
    config = tmp_path / "nginx.conf"
    config.write_text(standalone_config(layout, tmp_path))
    check = subprocess.run(
        [find_nginx(), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
         "-c", str(config)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "syntax is ok" in check.stderr and "test is successful" in check.stderr


def test_each_process_gets_its_port_pool_number_and_the_shared_secret() -> None:
    layout = Layout(workers=4, first_worker_port=8701, connection_budget=22)
    command = worker_command(layout, 2)
    assert command[command.index("--server.port") + 1] == "8703"
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    env = worker_env(layout, 2, "postgresql+asyncpg://r@db/audit", "s3cret")
    assert env["STRATLOG_POOL_SIZE"] == "5"  # 22 // 4: four processes hold at most 20
    assert env[WORKER_ENV] == "3/4"
    assert env["STREAMLIT_SERVER_COOKIE_SECRET"] == "s3cret"
    assert env["STRATLOG_DATABASE_URL"] == "postgresql+asyncpg://r@db/audit"
    assert env["MALLOC_ARENA_MAX"] == os.environ.get("MALLOC_ARENA_MAX", "2")


def test_the_command_writes_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "stratlog.conf"
    assert main(["serve", "--workers", "3", "--port", "9280", "--write-config", str(target)]) == 0
    assert target.read_text() == site_config(Layout(workers=3, port=9280))
    assert "for 3 processes" in capsys.readouterr().out
    assert main(["serve", "--workers", "2", "--write-config", "-"]) == 0
    assert capsys.readouterr().out == site_config(Layout(workers=2))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "5", "--connection-budget", "4"], "cannot give 5 processes"),
        (["--port", "8602"], "also a dashboard process's port"),
        (["--workers", "0"], "--workers"),
        (["--port", "70000"], "between 1 and 65535"),
    ],
)
def test_bad_layouts_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:  # argparse's own checks exit; the layout's return
        code = main(["serve", *argv, "--write-config", "-"])
        raise SystemExit(code)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_missing_nginx_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--nginx", str(tmp_path / "no-nginx"), "--run-dir", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"--nginx {tmp_path / 'no-nginx'}: no such executable" in err
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_a_port_in_use_is_named_and_everything_stops(tmp_path: Path) -> None:
    """nginx cannot listen: the command says why, stops the processes it started, exits 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        first = free_ports_in_a_row(1)
        run = subprocess.run(
            [sys.executable, "-m", "stratlog.cli.main", "--database",
             f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", "serve", "--workers", "1",
             "--port", str(port), "--worker-port", str(first), "--run-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "nginx exited with code 1" in run.stdout and "Address already in use" in run.stdout
    assert "stopped nginx and the dashboard processes" in run.stdout
    assert not healthy(first)  # the dashboard process it started is gone
