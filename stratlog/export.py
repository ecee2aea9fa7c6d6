"""Exports for incident documents: chart PNGs (vl-convert, scale 2, white) and table CSVs.

Both return bytes, so a dashboard download is one line, e.g.::

    st.download_button("PNG", chart_png(chart, strategy=s, since=a, until=b), "x.png")
    st.download_button("CSV", csv_bytes(rows), "x.csv")
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stratlog.render import Renderer
from stratlog.timewindow import Window

if TYPE_CHECKING:
    import pandas as pd

#: PNGs are rendered at twice the CSS pixel size: crisp when pasted into documents.
PNG_SCALE = 2
#: Width of a chart in CSS pixels when the chart does not set one (Streamlit charts do not).
DEFAULT_WIDTH = 720
BACKGROUND = "white"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: A text cell starting with one of these runs as a formula in a spreadsheet (OWASP, "CSV
#: Injection"); such a cell is written behind a single quote, which makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: CSV rows end in CRLF (RFC 4180). The writer quotes exactly the cells holding a character of
#: the row ending: with "\n" alone a bare CR in a message went out unquoted, and a spreadsheet
#: reads it as a new row, whose first cell could then be a formula.
CSV_LINE_END = "\r\n"
#: pandas dtypes that can hold text (numbers, booleans and datetimes cannot).
_TEXT_DTYPES = ["object", "string", "category"]


def chart_title(
    strategy: str,
    since: datetime,
    until: datetime,
    generated: datetime | None = None,
    heading: str | None = None,
) -> dict[str, Any]:
    """A Vega-Lite title naming the strategy, the window in UTC and the generation time."""
    made = (generated or datetime.now(UTC)).astimezone(UTC)
    text = f"{strategy} · {heading}" if heading else strategy
    return {
        "text": text,
        "subtitle": [Window.of(since, until).label(), f"generated {made:%Y-%m-%d %H:%M:%S} UTC"],
        "anchor": "start",
        "fontSize": 15,
        "subtitleFontSize": 12,
        "subtitleColor": "#52606D",
        "offset": 12,
    }


#: Validate each spec against the Vega-Lite schema when it is made (Altair's jsonschema pass)?
#: That pass was two thirds of the dashboard's server CPU (bench/profile_pages.py) and checks
#: shapes that only change with this code: the tests validate every builder's spec
#: (``STRATLOG_VALIDATE_CHARTS=1`` in tests/conftest.py, and tests/test_charts.py); the dashboard,
#: the exports and the snapshot skip it unless the variable is set.
VALIDATE_SPECS_ENV = "STRATLOG_VALIDATE_CHARTS"


def validating() -> bool:
    """Is ``STRATLOG_VALIDATE_CHARTS=1`` set (the tests set it)?"""
    return os.environ.get(VALIDATE_SPECS_ENV) == "1"


def skip_instantiation_checks() -> None:
    """Turn off Altair's debug mode unless specs are validated: in debug mode every schema
    object Altair builds (each ``alt.Data``, encoding, layer) validates itself with jsonschema
    when it is created, a second pass on top of ``to_dict``'s; it was 13 % of an Overview's
    server CPU after ``to_dict``'s own validation was off (docs/dashboard.md, "Where a page's
    time goes"). Process-wide, so only the dashboard and the command line call it."""
    if not validating():
        import altair.utils.schemapi as schemapi

        schemapi.disable_debug_mode()


def to_spec(chart: Any) -> dict[str, Any]:
    """The Vega-Lite dict of an Altair chart, validated only when ``STRATLOG_VALIDATE_CHARTS=1``."""
    spec: dict[str, Any] = chart.to_dict(validate=validating())
    return spec


def chart_spec(chart: Any, title: Mapping[str, Any], width: int = DEFAULT_WIDTH) -> dict[str, Any]:
    """The chart's Vega-Lite spec with the title, a white background and a width if it has none."""
    spec: dict[str, Any] = chart if isinstance(chart, dict) else to_spec(chart)
    spec = {**spec, "title": dict(title), "background": BACKGROUND}
    if "width" not in spec and not any(k in spec for k in ("hconcat", "vconcat", "concat")):
        spec["width"] = width
    return spec


#: Where PNGs are rendered: None in this process (the command line), or a helper process.
_renderer: Renderer | None = None


def render_in_helper_process() -> Renderer:
    """Render every later PNG of this process in a helper process (:mod:`stratlog.render`):
    the dashboard calls it at start, so vl-convert's JavaScript engine (~70 MiB) never lives
    in a dashboard process. Idempotent; returns the renderer in use."""
    global _renderer
    if _renderer is None:
        _renderer = Renderer()
    return _renderer


def spec_png(spec: Mapping[str, Any], scale: float = PNG_SCALE) -> bytes:
    """PNG bytes of a Vega-Lite spec, rendered offline (no remote data or fonts are fetched);
    in the helper process if :func:`render_in_helper_process` was called."""
    if _renderer is not None:
        return _renderer.png(spec, scale)
    import vl_convert as vlc  # the command line renders here

    return vlc.vegalite_to_png(dict(spec), scale=scale, allowed_base_urls=[])


def chart_png(
    chart: Any,
    *,
    strategy: str,
    since: datetime,
    until: datetime,
    heading: str | None = None,
    generated: datetime | None = None,
    width: int = DEFAULT_WIDTH,
) -> bytes:
    """PNG bytes of an Altair chart: scale 2, white, titled with strategy, window and time made."""
    title = chart_title(strategy, since, until, generated, heading)
    return spec_png(chart_spec(chart, title, width))


def _cell(value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    return value


def inert_text(value: Any) -> Any:
    """``value`` behind a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def _inert(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose headers and text cells cannot run as formulas."""
    safe = frame.copy()
    texts = frame.columns.get_indexer_for(frame.select_dtypes(include=_TEXT_DTYPES).columns)
    for position in sorted(set(texts)):
        safe.isetitem(position, frame.iloc[:, position].map(inert_text))
    safe.columns = [inert_text(name) for name in frame.columns]
    return safe


def csv_bytes(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> bytes:
    """UTF-8 CSV of a DataFrame or of row dicts (``columns`` picks and orders them).

    Datetimes become ISO-8601 strings, JSON payloads become JSON text, ``None`` an empty cell.
    Text that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab or CR
    first) gets a leading ``'``; numbers, negative ones too, stay numbers.
    """
    import pandas as pd  # only exports need it: keeps `import stratlog.export` light

    if isinstance(rows, pd.DataFrame):
        frame = rows if columns is None else rows.loc[:, list(columns)]
    else:
        records = [{key: _cell(value) for key, value in row.items()} for row in rows]
        # object dtype keeps each value as given: 29 stays 29 beside 16.78 in one column
        frame = pd.DataFrame(records, columns=list(columns) if columns else None, dtype=object)
    text: str = _inert(frame).to_csv(index=False, lineterminator=CSV_LINE_END)
    return text.encode("utf-8")


def file_name(strategy: str, since: datetime, until: datetime, kind: str, ext: str) -> str:
    """A safe, sortable download name: ``fraud-screen_20260301T0600Z-20260301T0700Z_status.png``."""
    fmt = "%Y%m%dT%H%MZ"
    left, right = since.astimezone(UTC), until.astimezone(UTC)
    stem = f"{safe_name(strategy)}_{left:{fmt}}-{right:{fmt}}_{safe_name(kind)}"
    return f"{stem}.{ext.lstrip('.')}"


def safe_name(text: str) -> str:
    """``text`` as letters, digits, dot, dash and underscore (never empty, no leading dot)."""
    cleaned = _UNSAFE_NAME.sub("_", text).strip("._") or "unnamed"
    return cleaned[:80]
