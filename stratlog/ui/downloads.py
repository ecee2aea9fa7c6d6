"""Keep a clicked download's file until the browser has fetched it.

A deferred ``st.download_button`` (our PNG, CSV and zip buttons: the file is made when clicked)
works in two steps: the click asks the process to run the callable, which stores the file and
answers with its ``/media/...`` URL; then the browser GETs that URL. Streamlit keeps such a file
referenced by no session only until the second "orphaned files" sweep, and a sweep runs at the
end of *every* script run of *any* session in the process. With twenty operators on one process
two other runs often end between the answer and the GET: ``make load`` saw 404 for 10-15 % of
the download clicks, on one process and behind nginx alike. :func:`keep_generated_downloads`
wraps the manager so that a file made by a click stays for ``keep_s`` seconds, whatever the
sweeps; after that the sweeps delete it as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: How long a clicked download's file stays fetchable (the browser GETs it at once).
KEEP_S = 60.0
_PATCHED = "_stratlog_keeps_downloads"


def keep_generated_downloads(
    manager: Any, keep_s: float = KEEP_S, clock: Callable[[], float] = time.monotonic
) -> bool:
    """Make ``manager`` (Streamlit's ``MediaFileManager``) keep files made by a deferred download
    for ``keep_s`` seconds; idempotent. False when its internals are not the ones this knows
    (a newer Streamlit): then nothing is changed."""
    if getattr(manager, _PATCHED, False):
        return True
    execute = getattr(manager, "execute_deferred", None)
    inactive = getattr(manager, "_get_inactive_file_ids", None)
    if not callable(execute) or not callable(inactive):
        return False
    made: dict[str, float] = {}
    lock = threading.Lock()

    def execute_deferred(file_id: str) -> str:
        url: str = execute(file_id)
        stored = url.rsplit("/", 1)[-1].split(".", 1)[0]  # "/media/<id>.<ext>"
        with lock:
            made[stored] = clock()
        return url

    def get_inactive_file_ids() -> set[str]:
        ids: set[str] = inactive()
        now = clock()
        with lock:
            for stored, at in list(made.items()):
                if now - at >= keep_s:
                    del made[stored]
            return ids - made.keys()

    manager.execute_deferred = execute_deferred
    manager._get_inactive_file_ids = get_inactive_file_ids
    setattr(manager, _PATCHED, True)
    return True


def keep_this_process_downloads() -> None:
    """:func:`keep_generated_downloads` on the running Streamlit server's manager."""
    from streamlit import runtime

    if runtime.exists():
        keep_generated_downloads(runtime.get_instance().media_file_mgr)
