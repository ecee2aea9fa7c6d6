"""Terminal output: aligned tables of literal text, status colours, JSON on stdout.

Log text is operator-controlled: it is never read as Rich markup, and control characters are
shown as escapes instead of being sent to the terminal.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text

from stratlog import vocabulary

#: Width of tables when stdout is not a terminal (rich would assume 80 columns and wrap).
PIPE_WIDTH = 200


def make_console() -> Console:
    """Colours only on a terminal (rich honours NO_COLOR); log text is never read as markup."""
    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


def clean(text: str, *, multiline: bool = False) -> str:
    """Operator text safe for a terminal: control characters shown as escapes, never sent raw."""
    keep = "\n\t" if multiline else ""
    return "".join(
        ch if ch.isprintable() or ch in keep else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def cell(value: Any, style: str = "") -> Text:
    """A table cell: ``None`` as a dash, everything else as literal text."""
    return Text(vocabulary.DASH if value is None else clean(str(value)), style=style)


def status_cell(status: str) -> Text:
    """A status in its fixed colour (the dashboard's)."""
    return cell(status, vocabulary.STATUS_COLORS.get(status, ""))


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Text]], right: Collection[int] = ()
) -> Table:
    """An aligned, borderless table; the columns at the indices in ``right`` are right-aligned."""
    grid = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for i, header in enumerate(headers):
        grid.add_column(header, justify="right" if i in right else "left")
    for row in rows:
        grid.add_row(*row)
    return grid


def heading(console: Console, text: str) -> None:
    """A section heading above a table."""
    console.print()
    console.print(Text(clean(text), style="bold"))


def utc(value: datetime | None) -> str:
    """``2026-03-01 06:00:00`` in UTC (for columns headed UTC), or a dash."""
    return vocabulary.utc(value, zone=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(value: Any) -> None:
    """JSON on stdout: datetimes as ISO-8601 strings, non-ASCII kept."""
    sys.stdout.write(json.dumps(value, default=_json_default, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()  # a closed pipe (`| head`) surfaces here, inside the error handling


def payload_text(payload: Any) -> Text:
    """A payload as indented JSON, highlighted on a terminal, never read as markup."""
    if payload is None:
        return Text("null (no payload stored)", style="dim")
    dumped = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    return JSONHighlighter()(Text(clean(dumped, multiline=True)))
