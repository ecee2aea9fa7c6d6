"""AppTest: the Row detail page (fields, message, payloads, neighbours, nothing as Markdown)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from streamlit.testing.v1 import AppTest

from stratlog.ui.bridge import Backend
from stratlog.ui.state import iso_utc

OpenApp = Callable[..., AppTest]
ROW = "pages/row.py"
RUNBOOK = "pages/runbook.py"
HOSTILE = "**bold** <img src=x onerror=alert(1)> [click](http://evil.example) :red[alarm] $x^2$"


def log_codes(at: AppTest) -> list[str]:
    """The code blocks holding log text (the "Copy link" box holds the page's URL)."""
    return [c.value for c in at.code if not c.value.startswith(("/", "http"))]


def link(at: AppTest, label: str) -> Any:
    """The page link with this label."""
    return next(p for p in at.page_link if p.value == label)


def params_of(page_link: Any) -> dict[str, str]:
    """The query parameters a page link carries."""
    return {k: v[0] for k, v in parse_qs(page_link.proto.query_string).items()}


def newest(at: AppTest, n: int = 3) -> list[int]:
    """Ids of the first runs of a runbook page."""
    return [int(i) for i in at.dataframe[0].value["Run"].iloc[:n]]


def test_every_field_message_and_payloads(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    runbook = open_app(demo_url, RUNBOOK, strategy="fraud-screen", status="error", **window)
    row_id = newest(runbook, 1)[0]
    at = open_app(demo_url, ROW, strategy="fraud-screen", status="error", row=row_id, **window)
    assert not at.exception and not at.warning
    assert at.title[0].value.startswith(f"Run {row_id}")
    fields = dict(zip(at.dataframe[0].value["Field"], at.dataframe[0].value["Value"], strict=True))
    for name in ("id", "strategyId", "strategyVersion", "requestId", "status", "errorCode"):
        assert name in fields
    assert fields["status"] == "error" and fields["strategyId"] == "fraud-screen"
    assert fields["createdAt"].endswith(" UTC")
    (message,) = log_codes(at)  # the error message, as a code block
    assert message
    assert len(at.json) == 2  # input and output payloads
    assert [e.label for e in at.expander] == ["Input payload (facts)", "Output payload"]


def test_neighbours_and_back_link_keep_the_filters(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    runbook = open_app(demo_url, RUNBOOK, strategy="kyc-depth", status="ok", **window)
    first, second, third = newest(runbook)
    at = open_app(demo_url, ROW, strategy="kyc-depth", status="ok", row=second, **window)
    back = params_of(link(at, "Back to runbook"))
    assert back["status"] == "ok" and back["since"] == window["since"] and "row" not in back
    at.button(key="nb_Older run").click().run()
    assert at.query_params["row"] == str(third)
    at = open_app(demo_url, ROW, strategy="kyc-depth", status="ok", row=second, **window)
    at.button(key="nb_Newer run").click().run()
    assert at.query_params["row"] == str(first) and at.query_params["status"] == "ok"
    newest_run = open_app(demo_url, ROW, strategy="kyc-depth", status="ok", row=first, **window)
    assert newest_run.button(key="nb_Newer run").disabled
    assert not newest_run.button(key="nb_Older run").disabled


def test_no_row_and_missing_row(open_app: OpenApp, demo_url: str) -> None:
    none = open_app(demo_url, ROW, strategy="kyc-depth")
    assert not none.exception
    assert any("No run selected" in i.value for i in none.info)
    missing = open_app(demo_url, ROW, strategy="kyc-depth", row=987654321)
    assert not missing.exception
    assert "no run with id 987654321" in missing.warning[0].value


def test_database_down(open_app: OpenApp, down_url: str) -> None:
    at = open_app(down_url, ROW, strategy="credit-limit", row=1)
    assert not at.exception
    assert "Cannot reach the database" in at.error[0].value


def test_log_content_is_never_rendered_as_markdown(
    open_app: OpenApp,
    demo_url: str,
    tmp_path: Path,
    demo_end: datetime,
    backend_for: Any,
    markdown_text: Callable[[AppTest], str],
) -> None:
    copy = tmp_path / "hostile.db"
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), copy)
    url = f"sqlite+aiosqlite:///{copy}"
    backend: Backend = backend_for(url)
    at_time = demo_end - timedelta(minutes=5)
    hostile = {
        "strategyId": "credit-limit",
        "status": "error",
        "errorCode": "**CODE**",
        "errorMessage": HOSTILE,
        "caseName": "*case* <b>x</b>",
        "durationMs": 1.0,
        "nodes": 1,
        "inputPayload": {"note": HOSTILE},
        "outputPayload": HOSTILE,
        "createdAt": at_time,
    }
    backend.run(backend.repository.insert_many([hostile]))
    since, until = iso_utc(demo_end - timedelta(hours=1)), iso_utc(demo_end)
    runbook = open_app(
        url, RUNBOOK, strategy="credit-limit", code="**CODE**", since=since, until=until
    )
    row_id = newest(runbook, 1)[0]
    at = open_app(url, ROW, strategy="credit-limit", row=row_id, since=since, until=until)
    assert not at.exception
    assert log_codes(at) == [HOSTILE, HOSTILE]  # message and the string payload: code blocks
    rendered = markdown_text(at) + markdown_text(runbook)
    for fragment in ("bold", "onerror", "evil.example", "alarm", "**CODE**", "*case*"):
        assert fragment not in rendered
    overview = open_app(url, strategy="credit-limit", since=since, until=until)
    assert not overview.exception
    assert "**CODE**" not in markdown_text(overview)
