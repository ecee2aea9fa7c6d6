"""Chart PNGs rendered in a helper process (issue 17), so a dashboard process stays small.

vl-convert runs Vega in an embedded JavaScript engine. Once it has rendered one PNG, that
engine holds ~70 MiB for the life of the process that loaded it (measured: the dashboard's
peak RSS went from ~340 to ~410 MiB at its first PNG download). A :class:`Renderer` keeps the
engine in one child process instead (``python -m stratlog.render``): started at the first PNG,
one render at a time, restarted when it has died, replaced after ``max_renders`` renders (a
long-lived engine's heap only grows), and killed when a render takes longer than
``timeout_s``, which a render inside the dashboard process could never be.

The protocol on the child's stdin / stdout: a request is a 4-byte big-endian length and that
many bytes of JSON ``{"spec": ..., "scale": ...}``; a reply is one status byte (``0`` the PNG,
``1`` an error message in UTF-8), a 4-byte length and the bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

_LENGTH = struct.Struct(">I")
OK, FAILED = b"0", b"1"
#: A render that takes longer than this is killed (the largest Overview chart takes ~0.3 s).
TIMEOUT_S = 30.0
#: The child is replaced after this many renders.
MAX_RENDERS = 500


class RenderError(RuntimeError):
    """A PNG could not be rendered: vl-convert's error, a timeout, or a child that died."""


class Renderer:
    """One helper process that renders Vega-Lite specs to PNG bytes; thread-safe."""

    def __init__(
        self,
        *,
        timeout_s: float = TIMEOUT_S,
        max_renders: int = MAX_RENDERS,
        command: Sequence[str] = (sys.executable, "-m", "stratlog.render"),
    ) -> None:
        if timeout_s <= 0 or max_renders < 1:
            raise ValueError("timeout_s must be > 0 and max_renders >= 1")
        self.command = list(command)
        self.timeout_s = timeout_s
        self.max_renders = max_renders
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._renders = 0
        #: Children started so far (the first included): a restart shows as 2, 3...
        self.started = 0

    @property
    def pid(self) -> int | None:
        """The helper's process id, or None while there is none."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def png(self, spec: Mapping[str, Any], scale: float) -> bytes:
        """The PNG bytes of ``spec`` at ``scale``; raises :class:`RenderError`. A helper found
        dead at this request (killed while idle, e.g. by the OOM killer) is replaced and the
        request sent once more; a request that hangs is not retried."""
        request = json.dumps({"spec": spec, "scale": scale}).encode()
        with self._lock:
            try:
                try:
                    status, body = self._ask(request)
                except TimeoutError:  # an OSError too: not retried
                    raise
                except (OSError, EOFError):
                    status, body = self._ask(request)
            except TimeoutError as exc:
                raise RenderError(
                    f"the chart's PNG render took longer than {self.timeout_s:g} s"
                ) from exc
            except (OSError, EOFError) as exc:
                raise RenderError(
                    "the chart's PNG render stopped (the PNG renderer process died)"
                ) from exc
        if status != OK:
            raise RenderError(body.decode("utf-8", "replace"))
        return body

    def _ask(self, request: bytes) -> tuple[bytes, bytes]:
        """One request and its reply; the helper is stopped when either fails (lock held)."""
        child = self._ready()
        try:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(_LENGTH.pack(len(request)) + request)
            child.stdin.flush()
            deadline = time.monotonic() + self.timeout_s
            status = _read(child.stdout, 1, deadline)
            (length,) = _LENGTH.unpack(_read(child.stdout, _LENGTH.size, deadline))
            body = _read(child.stdout, length, deadline)
        except BaseException:
            self._stop()
            raise
        self._renders += 1
        if self._renders >= self.max_renders:
            self._stop()
        return status, body

    def close(self) -> None:
        """Stop the helper (a later :meth:`png` starts a new one)."""
        with self._lock:
            self._stop()

    def _ready(self) -> subprocess.Popen[bytes]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        self._stop()
        self._child = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self.started += 1
        self._renders = 0
        return self._child

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if child.poll() is None:
            child.kill()
        child.wait()


def _read(stream: IO[bytes], size: int, deadline: float) -> bytes:
    """Exactly ``size`` bytes from the child before ``deadline``."""
    chunks, missing, fd = [], size, stream.fileno()
    while missing:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, missing)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child's loop: render each request until stdin closes."""
    import vl_convert as vlc

    while True:
        head = requests.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return
        (length,) = _LENGTH.unpack(head)
        try:
            request = json.loads(requests.read(length))
            body = vlc.vegalite_to_png(
                request["spec"], scale=request["scale"], allowed_base_urls=[]
            )
            status = OK
        except Exception as exc:  # the parent gets the message, the child goes on
            status, body = FAILED, f"{type(exc).__name__}: {exc}".encode()
        replies.write(status + _LENGTH.pack(len(body)) + body)
        replies.flush()


def main() -> None:
    """``python -m stratlog.render``: replies go to a private copy of stdout, and anything a
    library prints to stdout goes to stderr (the dashboard's log), not into a reply. Ctrl-C in
    a terminal reaches the whole process group: the helper ignores it and ends when its
    dashboard does (stdin closes), without a KeyboardInterrupt traceback in the log."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
