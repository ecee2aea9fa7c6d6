"""The view in the URL: strategy, absolute UTC window, runbook filters and the selected row.

Every page reads its state from the query string and writes the canonical form back, so a copied
link reproduces the exact view. A preset (``window=24h``) is turned into absolute ``since`` /
``until`` bounds as soon as it is chosen; the link keeps both, so it shows the same rows
tomorrow. Bad values fall back to defaults and each produces a :class:`Notice`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from stratlog.baselines import (
    BASELINES,
    DEFAULT_BASELINE,
    INSIGHTS_BASELINES,
    PRECEDING_WEEK,
    VERSION_MAX,
    VERSION_PREFIX,
    canonical_baseline,
    canonical_insights_baseline,
)
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.payload import parse_field
from stratlog.timewindow import Window
from stratlog.vocabulary import clip, md_escape

PRESETS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PRESET_LABELS: dict[str, str] = {
    "15m": "15 min",
    "1h": "1 h",
    "6h": "6 h",
    "24h": "24 h",
    "7d": "7 d",
    "30d": "30 d",
}
CUSTOM = "custom"
DEFAULT_PRESET = "24h"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_WINDOW = timedelta(days=400)
#: Every query parameter the dashboard owns, in the order links show them.
PARAMS = (
    "strategy", "window", "since", "until", "compare", "status", "code", "case", "version",
    "field", "request", "limit", "before", "row", "baseline",
)  # fmt: skip
#: ``compare=none`` switches the baseline off; without ``compare`` the view compares with this.
NO_COMPARE = "none"


@dataclass(frozen=True)
class Notice:
    """A message about the URL for the operator (Markdown-safe: values are escaped)."""

    level: Literal["warning", "info"]
    text: str
    #: The query parameter it is about ("" for the link as a whole): pages show only theirs.
    about: str = ""


#: The runbook's filters and the selected row: the Overview, Runbook and Row detail carry them
#: in their links; the Health page reads none of them, so it does not talk about them.
FILTER_PARAMS = frozenset(
    {"status", "code", "case", "version", "field", "request", "limit", "before", "row", "compare",
     "baseline"}
)  # fmt: skip
NO_FILTER_PAGES = frozenset({"health"})


def for_page(notices: Sequence[Notice], page_path: str) -> list[Notice]:
    """The notices a page shows (the Health page: none about the runbook's filters)."""
    if page_path not in NO_FILTER_PAGES:
        return list(notices)
    return [n for n in notices if n.about not in FILTER_PARAMS]


def repeated(values: Mapping[str, Sequence[str]]) -> list[Notice]:
    """A notice for each of our parameters that the link gives more than once (the last wins)."""
    return [
        Notice(
            "warning",
            f"The link gives {name} {len(given)} times: using the last one, “{_shown(given[-1])}”.",
            "window" if name in WINDOW_PARAMS else name,
        )
        for name, given in values.items()
        if name in PARAMS and len(given) > 1
    ]


#: The parameters of the time window (their notices are "about" the window).
WINDOW_PARAMS = frozenset({"window", "since", "until"})


@dataclass(frozen=True)
class View:
    """Everything a link pins down; the window is always absolute UTC."""

    since: datetime
    until: datetime
    preset: str | None = DEFAULT_PRESET
    strategy: str | None = None
    status: str | None = None
    code: str | None = None
    case: str | None = None
    limit: int = DEFAULT_LIMIT
    before: int | None = None
    row: int | None = None
    #: The baseline (a key of ``BASELINES``), or ``None``: no comparison.
    compare: str | None = DEFAULT_BASELINE
    #: Runbook filters: a strategyVersion (``__none__``: runs without one), one input payload
    #: field as ``path=value``, and a request id (searched in every strategy, at any time).
    version: str | None = None
    field: str | None = None
    request: str | None = None
    #: The Insights page's baseline (a key of ``INSIGHTS_BASELINES``; default: the 7 days
    #: before the window).
    baseline: str = PRECEDING_WEEK

    @property
    def window(self) -> Window:
        """The half-open window ``since <= createdAt < until``."""
        return Window.of(self.since, self.until)

    @property
    def seconds(self) -> float:
        """Length of the window in seconds."""
        return (self.until - self.since).total_seconds()

    def replace(self, **changes: object) -> View:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def params(self) -> dict[str, str]:
        """The canonical query parameters (defaults left out, except strategy and window)."""
        values: dict[str, str | None] = {
            "strategy": self.strategy,
            "window": self.preset or CUSTOM,
            "since": iso_utc(self.since),
            "until": iso_utc(self.until),
            "compare": None if self.compare == DEFAULT_BASELINE else self.compare or NO_COMPARE,
            "status": self.status,
            "code": self.code,
            "case": self.case,
            "version": self.version,
            "field": self.field,
            "request": self.request,
            "limit": None if self.limit == DEFAULT_LIMIT else str(self.limit),
            "before": None if self.before is None else str(self.before),
            "row": None if self.row is None else str(self.row),
            "baseline": None if self.baseline == PRECEDING_WEEK else self.baseline,
        }
        return {k: v for k, v in values.items() if v is not None}

    def without_filters(self) -> View:
        """The same strategy and window: no runbook filters, the newest page, no row."""
        return self.replace(
            status=None, code=None, case=None, version=None, field=None, request=None,
            before=None, row=None,
        )  # fmt: skip


def iso_utc(value: datetime) -> str:
    """``2026-11-28T10:00:00Z`` (microseconds only when there are any)."""
    naive = value.astimezone(UTC).replace(tzinfo=None)
    spec = "seconds" if naive.microsecond == 0 else "microseconds"
    return naive.isoformat(timespec=spec) + "Z"


def parse_utc(text: str) -> datetime:
    """An ISO-8601 date or time as aware UTC (naive means UTC); raises ``ValueError``."""
    text = text.strip()
    if "T" in text and " " in text:  # a '+' of an offset decoded as a space by the URL
        text = text.replace(" ", "+")
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ceil_minute(value: datetime) -> datetime:
    """The first whole minute at or after ``value`` (a stable end for cached windows)."""
    floor = value.replace(second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(minutes=1)


def anchor(preset: str, now: datetime) -> tuple[datetime, datetime]:
    """Absolute bounds of a preset ending now (rounded up to the minute)."""
    until = ceil_minute(now.astimezone(UTC))
    return until - PRESETS[preset], until


def default_view(now: datetime) -> View:
    """The view of a bare link: the last 24 h, no strategy chosen yet."""
    since, until = anchor(DEFAULT_PRESET, now)
    return View(since=since, until=until, preset=DEFAULT_PRESET)


def _shown(value: str) -> str:
    return md_escape(clip(value, 60))


def _window(params: Mapping[str, str], now: datetime, notices: list[Notice]) -> View:
    """The window from ``window`` / ``since`` / ``until``; bad values fall back to a preset."""
    raw = params.get("window", "").strip()
    preset = raw if raw in PRESETS else None
    if raw and raw != CUSTOM and preset is None:
        choices = ", ".join(PRESETS)
        notices.append(
            Notice(
                "warning", f"Unknown window “{_shown(raw)}” in the link (use {choices}).", "window"
            )
        )
    bounds, problem = _bounds(params)
    if bounds is not None:
        since, until = bounds
        exact = preset is not None and until - since == PRESETS[preset]
        return View(since=since, until=until, preset=preset if exact else None)
    fallback = preset or DEFAULT_PRESET
    label = PRESET_LABELS[fallback]
    if problem:
        notices.append(Notice("warning", f"{problem} Showing the last {label} instead.", "window"))
    elif raw == CUSTOM:
        text = f"A custom window needs since and until: showing the last {fallback}."
        notices.append(Notice("warning", text, "window"))
    # A link without a window simply shows the default one: the header says which.
    since, until = anchor(fallback, now)
    return View(since=since, until=until, preset=fallback)


def _bounds(params: Mapping[str, str]) -> tuple[tuple[datetime, datetime] | None, str]:
    """Valid absolute bounds, or ``None`` and what is wrong with them ('' when absent)."""
    raw_since, raw_until = params.get("since", "").strip(), params.get("until", "").strip()
    if not raw_since and not raw_until:
        return None, ""
    if not raw_since or not raw_until:
        return None, "The link gives only one end of the time window (it needs since and until)."
    try:
        since, until = parse_utc(raw_since), parse_utc(raw_until)
    except ValueError:
        bad = f"since={_shown(raw_since)}, until={_shown(raw_until)}"
        return None, f"The time window in the link is not a valid ISO-8601 UTC time ({bad})."
    if since == until:
        return None, "The time window in the link is empty (since equals until)."
    if since > until:
        return None, "The time window in the link ends before it starts."
    if until - since > MAX_WINDOW:
        return None, "The time window in the link is longer than 400 days."
    return (since, until), ""


def _text(params: Mapping[str, str], key: str, limit: int, notices: list[Notice]) -> str | None:
    value = params.get(key, "").strip()
    if len(value) > limit:
        notices.append(Notice("warning", f"The {key} in the link is too long; ignored.", key))
        return None
    return value or None


def _status(params: Mapping[str, str], notices: list[Notice]) -> str | None:
    value = params.get("status", "").strip()
    if value in ("", "all"):
        return None
    if value in STATUSES:
        return value
    allowed = ", ".join(STATUSES)
    text = f"Unknown status “{_shown(value)}” ({allowed}): showing all statuses."
    notices.append(Notice("warning", text, "status"))
    return None


def _limit(params: Mapping[str, str], notices: list[Notice]) -> int:
    raw = params.get("limit", "").strip()
    if not raw:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        text = f"Bad limit “{_shown(raw)}”: showing {DEFAULT_LIMIT} runs."
        notices.append(Notice("warning", text, "limit"))
        return DEFAULT_LIMIT
    if value > MAX_LIMIT:
        text = f"The runbook lists at most {MAX_LIMIT} runs: limit {value} capped."
        notices.append(Notice("warning", text, "limit"))
        return MAX_LIMIT
    return value


def _run_id(params: Mapping[str, str], key: str, notices: list[Notice]) -> int | None:
    raw = params.get(key, "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and 0 < int(raw) < 2**63:
        return int(raw)
    if key == "row":
        text = f"Bad row id “{_shown(raw)}” in the link: no row selected."
    else:
        text = f"Bad run id “{_shown(raw)}” in the link's before: showing the newest runs."
    notices.append(Notice("warning", text, key))
    return None


def _field(params: Mapping[str, str], notices: list[Notice]) -> str | None:
    value = _text(params, "field", 300, notices)
    if value is None:
        return None
    try:
        parse_field(value)
    except ValueError:
        text = (
            f"The payload filter “{_shown(value)}” is not path=value (e.g. "
            "applicant.country=DE): ignored."
        )
        notices.append(Notice("warning", text, "field"))
        return None
    return value


def _compare(params: Mapping[str, str], notices: list[Notice]) -> str | None:
    raw = params.get("compare", "").strip()
    if not raw:
        return DEFAULT_BASELINE
    if raw == NO_COMPARE:
        return None
    try:
        return canonical_baseline(raw)
    except ValueError:
        pass
    if raw.startswith(VERSION_PREFIX):
        text = (
            f"“{_shown(raw)}” names no version (e.g. compare=version:1.4.0, at most "
            f"{VERSION_MAX} characters): comparing with {BASELINES[DEFAULT_BASELINE]}."
        )
    else:
        choices = ", ".join([*BASELINES, "version:X", NO_COMPARE])
        text = (
            f"Unknown comparison “{_shown(raw)}” in the link (use {choices}): comparing with "
            f"{BASELINES[DEFAULT_BASELINE]}."
        )
    notices.append(Notice("warning", text, "compare"))
    return DEFAULT_BASELINE


def _insights_baseline(params: Mapping[str, str], notices: list[Notice]) -> str:
    raw = params.get("baseline", "").strip()
    if not raw:
        return PRECEDING_WEEK
    try:
        return canonical_insights_baseline(raw)
    except ValueError:
        choices = ", ".join(INSIGHTS_BASELINES)
        text = (
            f"Unknown insights baseline “{_shown(raw)}” in the link (use {choices}): comparing "
            f"with {INSIGHTS_BASELINES[PRECEDING_WEEK]}."
        )
        notices.append(Notice("warning", text, "baseline"))
        return PRECEDING_WEEK


def parse_view(params: Mapping[str, str], now: datetime) -> tuple[View, list[Notice]]:
    """The view a link describes, and a notice for every value that had to fall back."""
    notices: list[Notice] = []
    view = _window(params, now, notices)
    view = view.replace(
        strategy=_text(params, "strategy", 200, notices),
        status=_status(params, notices),
        code=_text(params, "code", 100, notices),
        case=_text(params, "case", 200, notices),
        limit=_limit(params, notices),
        before=_run_id(params, "before", notices),
        row=_run_id(params, "row", notices),
        compare=_compare(params, notices),
        version=_text(params, "version", 100, notices),
        field=_field(params, notices),
        request=_text(params, "request", 200, notices),
        baseline=_insights_baseline(params, notices),
    )
    return view, notices


def resolve_strategy(
    view: View, strategies: Sequence[str], *, from_link: bool
) -> tuple[View, list[Notice]]:
    """Check the strategy against the log; fall back to the first one with a notice."""
    if not strategies or view.strategy in strategies:
        return view, []
    fallback = strategies[0]
    if view.strategy is None:
        notices = (
            [Notice("info", f"No strategy in the link: showing {md_escape(fallback)}.", "strategy")]
            if from_link
            else []
        )
        return view.replace(strategy=fallback), notices
    text = (
        f"Unknown strategy “{_shown(view.strategy)}”: no run of it is recorded in this database. "
        f"Check the link, or pick one of the {len(strategies)} strategies in the sidebar. "
        f"Showing {md_escape(fallback)} instead."
    )
    return view.replace(strategy=fallback, code=None, case=None, before=None, row=None), [
        Notice("warning", text, "strategy")
    ]


@dataclass(frozen=True)
class ParamsDiff:
    """Whether the URL needs rewriting, and to what."""

    target: dict[str, str] = field(default_factory=dict)
    changed: bool = False


def canonical(current: Mapping[str, str], view: View) -> ParamsDiff:
    """The query string for ``view``, keeping foreign parameters (e.g. ``embed``)."""
    foreign = {k: v for k, v in current.items() if k not in PARAMS}
    target = {**view.params(), **foreign}
    return ParamsDiff(target, dict(current) != target)
