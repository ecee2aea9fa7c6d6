"""Hostile log rows for the browser suite: markup, scripts, Markdown links and very long text.

Every payload that would run sets ``window.__pwned`` and opens an alert, so the test can see it
from two sides. The rows belong to their own strategy, so the demo's stories stay untouched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

#: The strategy's own name is hostile too (it shows in the picker and every header).
STRATEGY = "zz-hostile-<b>bold</b>"
SCRIPT = "<script>window.__pwned=1;alert('script')</script>"
IMG = "<img src=x onerror=\"window.__pwned=1;alert('img')\">"
MD_LINK = "[click me](javascript:window.__pwned=1)"
MD_IMAGE = "![tracker](http://127.0.0.1:1/x.png)"
MARKUP = ":red[alarm] **bold** $x^2$ <u>u</u>"
#: A bare URL, which Markdown would turn into a live link (the Row detail caption shows it).
URL = "http://127.0.0.1:1/deploy www.127.0.0.1:1 \u202egnp.exe\u202c"
LONG = "A" * 10_000  # 10 kB without a space: must not widen the page
#: Reads "invoiceexe.png done" if the override is applied instead of shown.
BIDI = "invoice\u202egnp.exe\u202c done"
#: 500 short lines: the message block must scroll, not grow the page by 11,000 pixels.
LINES = "\n".join(f"line {i}" for i in range(1, 501))
LONG_CASE = "c" * 200  # the longest case name a column holds
#: The error codes (at most 100 characters on PostgreSQL).
CODES = (SCRIPT, IMG, MD_LINK)
#: The case names (at most 200 characters).
CASES = (MD_IMAGE, IMG, LONG_CASE, BIDI)
#: Markers that would only appear if log text became an element or a request.
NEEDLES = ("__pwned", "127.0.0.1:1", "javascript:")


def rows(end: datetime) -> list[dict[str, Any]]:
    """Thirty runs in the hour before ``end``: every field that holds text is hostile."""
    messages = (SCRIPT, IMG, MD_LINK, MD_IMAGE, MARKUP, LONG, BIDI, LINES)
    out = []
    for i in range(30):
        failed = i % 3 != 0
        n = i - i // 3 - 1  # 0, 1, 2... over the failed runs
        out.append(
            {
                "strategyId": STRATEGY,
                "strategyVersion": URL if i % 2 else MARKUP[:100],
                "requestId": IMG,
                "status": "error" if failed else "ok",
                "errorCode": CODES[n % len(CODES)] if failed else None,
                "errorMessage": messages[n % len(messages)] if failed else None,
                "caseName": None if failed else CASES[(i // 3) % len(CASES)],
                "durationMs": 1.0 + i,
                "nodes": 10 + i,
                "points": None if failed else float(i),
                "inputPayload": {"note": SCRIPT, "link": MD_LINK, IMG: LONG, "list": [MD_IMAGE]},
                "outputPayload": LONG if i % 2 else {"html": IMG, "markdown": MARKUP},
                "createdAt": end - timedelta(minutes=59) + timedelta(minutes=2 * i),
            }
        )
    return out
