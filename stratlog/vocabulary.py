"""The words, colours and number formats every surface shares: dashboard, snapshot, command line.

One place for the "no rule matched" wording, the fixed status colours and order, how counts,
shares, durations and UTC times are written, and the one Markdown escaper. Plain Python: no
Streamlit, no Altair, not even SQLAlchemy (the command line imports it for ``--help``).
"""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import UTC, datetime
from typing import Any

# -- words -----------------------------------------------------------------------------------

#: How the null case (no rule matched, ``defaultPoints`` awarded) reads everywhere.
NO_RULE_LABEL = "no rule matched (defaultPoints)"
#: The ``case`` value of a link or a filter meaning "no rule matched" (a null caseName).
NO_RULE = "__none__"
#: Shown for a missing value.
DASH = "–"

# -- colours and order -----------------------------------------------------------------------

#: Okabe-Ito colours (safe for the common colour-vision deficiencies), one per status, in the
#: model's order (``STATUSES``; a test keeps the two equal).
STATUS_COLORS: dict[str, str] = {
    "ok": "#0072B2",  # blue
    "error": "#D55E00",  # vermillion
    "timeout": "#E69F00",  # orange
    "limit": "#CC79A7",  # reddish purple
}
#: Statuses in the order every legend, table and stack uses.
STATUS_ORDER: tuple[str, ...] = tuple(STATUS_COLORS)
#: Light tints of the status colours, for table cell backgrounds.
STATUS_TINTS: dict[str, str] = {
    "ok": "#E5F1F8",
    "error": "#FBEBE0",
    "timeout": "#FCF3E0",
    "limit": "#F9EEF4",
}
#: Accent for single-series charts (cases, points, durations): neutral, not a status.
ACCENT = "#4C5D73"
ACCENT_LIGHT = "#A7B4C4"
MUTED = "#8A94A3"
TEXT = "#1F2933"
GRID = "#E7EAEE"
FONT = "Source Sans Pro, Helvetica Neue, Arial, sans-serif"


def status_color(status: str) -> str:
    """The colour of a status; unknown values get the muted grey."""
    return STATUS_COLORS.get(status, MUTED)


def status_range() -> list[str]:
    """Colours in :data:`STATUS_ORDER`, for an Altair scale ``range``."""
    return [STATUS_COLORS[s] for s in STATUS_ORDER]


def status_rank(status: str) -> int:
    """Position of a status in :data:`STATUS_ORDER`; unknown values sort last."""
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def case_label(case_name: str | None) -> str:
    """The case name, or the wording for the "no rule matched" bucket."""
    return NO_RULE_LABEL if case_name is None else case_name


NO_VERSION_LABEL = "(no version)"


def version_label(version: str | None) -> str:
    """The version, or the wording for runs recorded without one."""
    return NO_VERSION_LABEL if version is None else version


# -- numbers and times -----------------------------------------------------------------------


def count(value: int | None) -> str:
    """``12,345``, or a dash for no value."""
    return DASH if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    """A share as a percentage with sensible precision (``0.04 %``, ``1.2 %``, ``38 %``)."""
    if value is None:
        return DASH
    pct = value * 100
    if pct == 0:
        return "0 %"
    if pct < 0.1:
        return f"{pct:.2f} %"
    if pct < 10 or 99 < pct < 100:
        return f"{pct:.1f} %"
    return f"{pct:.0f} %"


def share(value: float | None) -> str:
    """A share with one decimal, for tables (``27.6 %``), or a dash."""
    return DASH if value is None else f"{value * 100:.1f} %"


def ms(value: float | None) -> str:
    """A duration in milliseconds (``0.84 ms``, ``12.3 ms``, ``1,204 ms``)."""
    if value is None:
        return DASH
    if value < 1:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def number(value: float | None, digits: int = 1) -> str:
    """A plain number with thousands separators and ``digits`` decimals (dash for none)."""
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def figure(value: float | None) -> str:
    """A table figure: ``9.28``, ``49.7``, ``1,204.5`` (two decimals below 100, one above)."""
    if value is None:
        return DASH
    return number(value, 2 if abs(value) < 100 else 1)


def compact(value: float | None) -> str:
    """A large number compactly: ``950``, ``12.3 k``, ``4.56 M``."""
    if value is None:
        return DASH
    size = abs(value)
    if size >= 1e9:
        return f"{value / 1e9:.2f} G"
    if size >= 1e6:
        return f"{value / 1e6:.2f} M"
    if size >= 1e4:
        return f"{value / 1e3:.1f} k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def utc(value: datetime | None, *, seconds: bool = True, zone: bool = True) -> str:
    """``2026-11-28 10:00:00 UTC`` (aware values converted, naive ones taken as UTC); a dash.

    ``seconds=False`` drops the seconds, ``zone=False`` the " UTC" (for columns headed UTC).
    """
    if value is None:
        return DASH
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} UTC" if zone else text


def duration_label(seconds: float) -> str:
    """A window or bucket length in words: ``15 min``, ``6 h``, ``7 d``, ``90 s``."""
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"


# -- text ------------------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)
#: An invisible, zero-width character that ends a word for no parser: it breaks the bare URLs
#: and e-mail addresses that GFM turns into links ("autolink literals"). Escapes do not: the
#: renderers (Streamlit's remark-gfm, GitHub) look for them after resolving the escapes.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=\\/\\/)|(?<=www)(?=\\\.)|(?<=@)")


#: Unicode categories that draw nothing or reorder text: controls, format characters (the
#: bidirectional overrides U+202A-U+202E, U+2066-U+2069, zero-width ones), line and paragraph
#: separators, private-use, surrogate and unassigned code points.
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in _INVISIBLE


def visible(text: str, *, multiline: bool = False) -> str:
    """Log text with every invisible or reordering character shown as ``⟨U+202E⟩``.

    ``invoice\u202egnp.exe`` would read "invoiceexe.png" in a browser: shown this way it reads
    what it is. Line breaks and tabs stay with ``multiline``; the rest is untouched.
    """
    keep = "\n\t" if multiline else ""
    if text.isprintable():  # the common case, in C
        return text
    return "".join(f"⟨U+{ord(ch):04X}⟩" if _invisible(ch) and ch not in keep else ch for ch in text)


def visible_json(value: Any) -> Any:
    """A JSON document with :func:`visible` applied to every string, keys included."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible(str(k)): visible_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [visible_json(v) for v in value]
    return value


def md_escape(text: str) -> str:
    """Operator text made inert on one Markdown line: flattened, every ASCII punctuation escaped.

    Runs of white space become one space, so the text cannot start a new block; invisible and
    reordering characters are shown as ``⟨U+202E⟩`` (:func:`visible`), so none can reorder what
    follows; every ASCII punctuation character (CommonMark lets each be backslash-escaped)
    loses its meaning, which also covers Streamlit's own syntax (``:red[...]``, ``:smile:``,
    ``$...$``); and a word joiner after ``:`` of ``://``, after ``www`` and after ``@`` keeps
    a bare URL or address from becoming a live link. Used for short values inside Markdown (a
    caption naming a strategy, a snapshot table cell); log content on the dashboard goes
    through st.code / st.text / st.json / dataframes instead.
    """
    flat = visible(" ".join(text.split()))
    escaped = "".join(f"\\{ch}" if ch in _PUNCTUATION else ch for ch in flat)
    return _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, escaped)


def clip(text: str, limit: int = 80) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
