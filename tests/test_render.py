"""The PNG helper process (stratlog/render.py): real children, real vl-convert."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import vl_convert as vlc

from stratlog.render import Renderer, RenderError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPEC = {
    "data": {"values": [{"a": "x", "n": 3}, {"a": "y", "n": 5}]},
    "mark": "bar",
    "encoding": {
        "x": {"field": "a", "type": "nominal"},
        "y": {"field": "n", "type": "quantitative"},
    },
    "width": 120,
    "height": 80,
}


@pytest.fixture
def renderer() -> Iterator[Renderer]:
    made = Renderer(timeout_s=60)
    yield made
    made.close()


def test_it_renders_the_same_picture_as_vl_convert_in_this_process(renderer: Renderer) -> None:
    png = renderer.png(SPEC, 2)
    assert png.startswith(PNG_MAGIC)
    assert png == vlc.vegalite_to_png(SPEC, scale=2, allowed_base_urls=[])
    assert renderer.pid is not None and renderer.pid != os.getpid()


def test_a_bad_spec_is_an_error_and_the_helper_goes_on(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match=r"(?i)error"):
        renderer.png({"mark": "nonsense-mark", "data": {"values": []}}, 1)
    pid = renderer.pid
    assert renderer.png(SPEC, 1).startswith(PNG_MAGIC)
    assert renderer.pid == pid and renderer.started == 1


def test_a_dead_helper_is_replaced_at_the_next_render(renderer: Renderer) -> None:
    renderer.png(SPEC, 1)
    assert renderer.pid is not None
    os.kill(renderer.pid, signal.SIGKILL)
    assert renderer.png(SPEC, 1).startswith(PNG_MAGIC)
    assert renderer.started == 2


def test_the_helper_is_replaced_after_max_renders() -> None:
    renderer = Renderer(max_renders=2)
    try:
        first = [renderer.png(SPEC, 1) for _ in range(2)]
        assert renderer.pid is None  # stopped after its second render
        renderer.png(SPEC, 1)
        assert renderer.started == 2 and first[0] == first[1]
    finally:
        renderer.close()


def test_a_render_that_hangs_is_killed_after_the_timeout() -> None:
    hangs = [sys.executable, "-c", "import time; time.sleep(60)"]
    renderer = Renderer(timeout_s=0.5, command=hangs)
    try:
        with pytest.raises(RenderError, match=r"longer than 0\.5 s"):
            renderer.png(SPEC, 1)
        assert renderer.pid is None
    finally:
        renderer.close()


def test_a_helper_that_exits_is_a_clear_error() -> None:
    renderer = Renderer(command=[sys.executable, "-c", "pass"])
    with pytest.raises(RenderError, match="renderer process died"):
        renderer.png(SPEC, 1)


def test_what_a_library_prints_does_not_corrupt_a_reply(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.py"
    noisy.write_text(
        "import vl_convert\n"
        "render = vl_convert.vegalite_to_png\n"
        "def loud(*args, **kwargs):\n"
        "    print('a library prints to stdout', flush=True)\n"
        "    return render(*args, **kwargs)\n"
        "vl_convert.vegalite_to_png = loud\n"
        "from stratlog.render import main\n"
        "main()\n"
    )
    renderer = Renderer(command=[sys.executable, str(noisy)])
    try:
        assert renderer.png(SPEC, 1).startswith(PNG_MAGIC)
    finally:
        renderer.close()


def test_concurrent_renders_each_get_their_own_picture(renderer: Renderer) -> None:
    small, large = renderer.png(SPEC, 1), renderer.png(SPEC, 3)
    got: list[bytes] = []
    threads = [
        threading.Thread(target=lambda s=s: got.append(renderer.png(SPEC, s))) for s in (1, 3) * 4
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == sorted([small, large] * 4)


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        Renderer(timeout_s=0)


def test_ctrl_c_in_the_terminal_leaves_the_helper_to_end_with_its_dashboard(
    renderer: Renderer,
) -> None:
    renderer.png(SPEC, 1)
    pid = renderer.pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)  # what a terminal's Ctrl-C sends to the whole process group
    assert renderer.png(SPEC, 1).startswith(PNG_MAGIC)
    assert renderer.pid == pid and renderer.started == 1
