"""The shared vocabulary: one escaper, one set of formats and colours for every surface."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from stratlog.model.strategy_execution_log import STATUSES
from stratlog.vocabulary import (
    DASH,
    STATUS_ORDER,
    WORD_JOINER,
    case_label,
    figure,
    md_escape,
    rate,
    share,
    status_rank,
    utc,
    visible,
    visible_json,
)


def test_markdown_escape_and_rates() -> None:
    assert md_escape("*a*\n[b](c)") == "\\*a\\* \\[b\\]\\(c\\)"
    assert [rate(v) for v in (None, 0.0, 0.0004, 0.012, 0.5, 0.996)] == [
        "–", "0 %", "0.04 %", "1.2 %", "50 %", "99.6 %"
    ]  # fmt: skip


def test_the_status_order_is_the_models() -> None:
    assert STATUS_ORDER == STATUSES
    assert [status_rank(s) for s in (*STATUSES, "weird")] == [0, 1, 2, 3, 4]


@given(st.text())
def test_escaped_text_is_one_inert_line(text: str) -> None:
    escaped = md_escape(text)
    visible = escaped.replace(WORD_JOINER, "")
    assert visible.isprintable() and "\n" not in escaped and escaped == escaped.strip()
    unescaped = iter(visible)
    for ch in unescaped:  # every ASCII punctuation comes after a backslash
        if ch == "\\":
            assert next(unescaped) in string.punctuation
        else:
            assert ch not in string.punctuation


def test_escaping_shows_controls_and_direction_overrides() -> None:
    escaped = md_escape("a\x1b[2J\u202egnp.exe\u202c\tb")
    assert escaped == "a⟨U\\+001B⟩\\[2J⟨U\\+202E⟩gnp\\.exe⟨U\\+202C⟩ b"


def test_invisible_characters_are_shown_by_name() -> None:
    assert visible("invoice\u202egnp.exe\u202c done") == "invoice⟨U+202E⟩gnp.exe⟨U+202C⟩ done"
    assert visible("a\u200bb\u2066c\x00") == "a⟨U+200B⟩b⟨U+2066⟩c⟨U+0000⟩"
    assert visible("two\nlines\tand tab", multiline=True) == "two\nlines\tand tab"
    assert visible("two\nlines") == "two⟨U+000A⟩lines"
    assert visible("café – ok 🙂\u00a0x") == "café – ok 🙂\u00a0x"  # printable or a space
    assert visible_json({"k\u202e": ["v\u202e", 1, None]}) == {"k⟨U+202E⟩": ["v⟨U+202E⟩", 1, None]}


def test_bare_urls_and_addresses_cannot_become_links() -> None:
    text = md_escape("see http://evil.example/x, WWW.evil.example or ops@evil.example")
    assert "://" not in text.replace("\\", "") and "www." not in text.lower().replace("\\", "")
    assert text.replace(WORD_JOINER, "").replace("\\", "") == (
        "see http://evil.example/x, WWW.evil.example or ops@evil.example"
    )


def test_formats() -> None:
    at = datetime(2026, 3, 1, 7, 30, 5, tzinfo=timezone(timedelta(hours=1)))
    assert utc(at) == "2026-03-01 06:30:05 UTC"
    assert utc(at, seconds=False) == "2026-03-01 06:30 UTC"
    assert utc(at.astimezone(UTC), zone=False) == "2026-03-01 06:30:05"
    assert utc(None) == DASH and figure(None) == DASH and share(None) == DASH
    assert [figure(v) for v in (9.284, 49.75, 1204.54, -40.0)] == [
        "9.28",
        "49.75",
        "1,204.5",
        "-40.00",
    ]
    assert share(0.2764) == "27.6 %" and case_label(None) == "no rule matched (defaultPoints)"


def test_the_command_line_loads_no_database_code_for_help() -> None:
    probe = "import json, sys, stratlog.cli.main; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert not {"sqlalchemy", "altair", "pandas", "streamlit"} & {
        m.split(".")[0] for m in json.loads(loaded.stdout)
    }
