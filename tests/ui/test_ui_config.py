"""Production settings: no error details, XSRF on, no usage statistics; the secrets example."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

from stratlog.ui import auth

ROOT = Path(__file__).resolve().parents[2]


def test_production_config() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["headless"] is True
    assert config["runner"]["postScriptGC"] is False  # no forced full collection per run


def test_the_server_loop_sends_small_responses_without_delay() -> None:
    # Streamlit binds its listening socket as socket.socket(family), protocol 0, and runs its
    # server on uvloop when it can import it. uvloop switches Nagle off on every accepted TCP
    # connection; the stdlib loop only does for sockets made with IPPROTO_TCP, and then each
    # response waits for the client's delayed ACK (see bench/bench_dashboard.py).
    from streamlit.web import bootstrap

    factory = bootstrap._get_uvloop_loop_factory()
    assert factory is not None, "uvloop is not importable: the dashboard serves files slowly"
    assert _accepted_nodelay(factory) is True


def _accepted_nodelay(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> bool:
    """Whether a connection accepted on a loop has TCP_NODELAY, listening as Streamlit does."""
    listener = socket.socket(socket.AF_INET)  # protocol 0, like Streamlit's
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    async def probe() -> bool:
        accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def connected(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
            writer.close()

        server = await asyncio.start_server(connected, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        try:
            return await asyncio.wait_for(accepted, 5)
        finally:
            writer.close()
            server.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(probe())


def test_the_secrets_example_shows_the_gate_and_its_password_is_refused() -> None:
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.toml.example").read_text())
    section = example["auth"]
    assert set(section) == {"password"}  # OIDC is documented there, commented out
    assert len(section["password"]) >= 20
    # a copied example must not open the dashboard (tests/ui/test_ui_access.py shows the page)
    assert auth.is_example_password(section["password"])
    assert not auth.is_example_password(section["password"] + "-and-more")


def test_no_real_secrets_file_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", ".streamlit"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert ".streamlit/secrets.toml" not in tracked
    ignored = subprocess.run(
        ["git", "check-ignore", ".streamlit/secrets.toml"], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0


def test_the_gate_reads_its_config_from_the_secrets_file(tmp_path: Path) -> None:
    """Streamlit's own secrets loader: a file with [auth] password turns the gate on."""
    import streamlit as st
    from streamlit import config
    from streamlit.runtime.secrets import Secrets

    path = tmp_path / "secrets.toml"
    path.write_text('[auth]\npassword = "s3cret-phrase"\n')
    saved, saved_files = st.secrets, st.get_option("secrets.files")
    try:
        config._set_option("secrets.files", [str(path)], "test")  # not settable at runtime
        st.secrets = Secrets()
        assert auth.read_config() == auth.GateConfig(password="s3cret-phrase")
        path.write_text("[auth\npassword = ")  # a file that does not parse: locked, not open
        st.secrets = Secrets()
        assert auth.read_config().broken
        path.unlink()  # no file at all: no gate
        st.secrets = Secrets()
        assert not auth.read_config().active
    finally:
        config._set_option("secrets.files", saved_files, "test")
        st.secrets = saved
