"""A clicked download's file survives other sessions' runs until the browser fetches it."""

from __future__ import annotations

from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from stratlog.ui.downloads import keep_generated_downloads


def clicked(manager: MediaFileManager) -> str:
    """A deferred button's click: the callable runs, the file is stored; its storage id."""
    placeholder = manager.add_deferred(lambda: b"a,b\n1,2\n", "text/csv", "coords", "x.csv")
    url = manager.execute_deferred(placeholder)
    return url.rsplit("/", 1)[-1].split(".")[0]


def test_without_the_fix_two_runs_of_other_sessions_delete_it() -> None:
    """Streamlit's own behaviour (the 404s make load saw): the reason for the fix."""
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    stored = clicked(manager)
    manager.remove_orphaned_files()  # another session's run ends: marked
    assert manager.read_file(stored) is not None
    manager.remove_orphaned_files()  # and another: gone
    assert manager.read_file(stored) is None


def test_the_file_stays_for_the_keep_time_then_goes() -> None:
    now = [100.0]
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    assert keep_generated_downloads(manager, keep_s=60, clock=lambda: now[0])
    assert keep_generated_downloads(manager, keep_s=60, clock=lambda: now[0])  # idempotent
    stored = clicked(manager)
    for _ in range(50):  # fifty runs of other sessions
        manager.remove_orphaned_files()
    assert manager.read_file(stored) is not None
    now[0] += 61
    manager.remove_orphaned_files()
    manager.remove_orphaned_files()
    assert manager.read_file(stored) is None


def test_an_unknown_manager_is_left_alone() -> None:
    class Other:
        pass

    other = Other()
    assert keep_generated_downloads(other) is False
    assert vars(other) == {}
