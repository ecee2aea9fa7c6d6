"""URL state: parsing, canonical parameters, presets as absolute bounds, notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stratlog.ui.state import (
    DEFAULT_LIMIT,
    PRESETS,
    View,
    anchor,
    canonical,
    ceil_minute,
    for_page,
    iso_utc,
    parse_utc,
    parse_view,
    repeated,
    resolve_strategy,
)
from stratlog.vocabulary import NO_RULE

NOW = datetime(2026, 3, 1, 10, 17, 42, 500000, tzinfo=UTC)


def test_round_trip_of_a_full_view() -> None:
    params = {
        "strategy": "credit-limit",
        "window": "custom",
        "since": "2026-02-28T09:00:00Z",
        "until": "2026-02-28T10:30:00.250000Z",
        "status": "error",
        "code": "MISSING_FACT",
        "case": NO_RULE,
        "limit": "120",
        "row": "42",
    }
    view, notices = parse_view(params, NOW)
    assert notices == []
    assert view.params() == params
    assert canonical(params, view).changed is False


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_preset_becomes_absolute_bounds_ending_at_the_next_minute(preset: str) -> None:
    view, notices = parse_view({"window": preset}, NOW)
    assert notices == []
    assert view.preset == preset
    assert view.until == datetime(2026, 3, 1, 10, 18, tzinfo=UTC)
    assert view.until - view.since == PRESETS[preset]
    again, _ = parse_view(view.params(), NOW + timedelta(days=3))
    assert (again.since, again.until) == (view.since, view.until)  # the link is frozen


def test_bounds_that_do_not_match_the_preset_are_custom() -> None:
    view, _ = parse_view(
        {"window": "1h", "since": "2026-02-28T09:00:00Z", "until": "2026-02-28T11:00:00Z"}, NOW
    )
    assert view.preset is None
    assert view.params()["window"] == "custom"


def test_a_bare_link_is_the_default_without_notices() -> None:
    view, notices = parse_view({}, NOW)
    assert notices == []
    assert view.preset == "24h" and view.strategy is None and view.limit == DEFAULT_LIMIT


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"since": "2026-02-28T09:00:00Z"}, "only one end"),
        ({"since": "nope", "until": "2026-02-28T09:00:00Z"}, "not a valid ISO-8601"),
        ({"since": "2026-02-28T09:00:00Z", "until": "2026-02-28T08:00:00Z"}, "ends before"),
        ({"since": "2020-01-01", "until": "2026-01-01"}, "longer than 400 days"),
        ({"window": "custom"}, "needs since and until"),
        ({"window": "3w"}, "Unknown window"),
        ({"status": "broken"}, "Unknown status"),
        ({"limit": "0"}, "Bad limit"),
        ({"limit": "ten"}, "Bad limit"),
        ({"limit": "201"}, "capped"),
        ({"row": "-3"}, "Bad row id"),
        ({"strategy": "x" * 500}, "too long"),
    ],
)
def test_bad_or_missing_values_fall_back_with_a_notice(
    params: dict[str, str], fragment: str
) -> None:
    view, notices = parse_view(params, NOW)
    assert any(fragment in n.text for n in notices), notices
    assert view.until > view.since


def test_a_link_without_a_window_needs_no_notice() -> None:
    view, notices = parse_view({"strategy": "credit-limit"}, NOW)
    assert notices == [] and view.preset == "24h"  # the header says "last 24 h"


def test_an_empty_window_is_called_empty() -> None:
    at = "2026-02-28T09:00:00Z"
    _, notices = parse_view({"since": at, "until": at}, NOW)
    assert [n.about for n in notices] == ["window"] and "empty" in notices[0].text
    assert "ends before" not in notices[0].text


def test_repeated_parameters_are_named() -> None:
    found = repeated(
        {"strategy": ["a", "b"], "code": ["X"], "since": ["1", "2", "3"], "zz": ["1", "2"]}
    )
    assert [(n.about, n.text.split(":")[0]) for n in found] == [
        ("strategy", "The link gives strategy 2 times"),
        ("window", "The link gives since 3 times"),
    ]
    assert "“b”" in found[0].text


def test_the_health_page_says_nothing_about_runbook_filters() -> None:
    _, notices = parse_view({"limit": "-3", "window": "3w", "row": "x"}, NOW)
    assert [n.about for n in for_page(notices, "health")] == ["window"]
    assert len(for_page(notices, "runbook")) == 3


def test_notices_escape_the_values_they_quote() -> None:
    _, notices = parse_view({"window": "1h", "status": "**x**](http://e)"}, NOW)
    (notice,) = notices
    assert "**" not in notice.text and "\\*\\*x\\*\\*" in notice.text


def test_parse_utc_accepts_offsets_dates_and_decoded_plus_signs() -> None:
    assert parse_utc("2026-02-28T10:00:00+02:00") == datetime(2026, 2, 28, 8, tzinfo=UTC)
    assert parse_utc("2026-02-28T10:00:00 02:00") == datetime(2026, 2, 28, 8, tzinfo=UTC)
    assert parse_utc("2026-02-28") == datetime(2026, 2, 28, tzinfo=UTC)
    assert parse_utc("2026-02-28T10:00:00") == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert iso_utc(datetime(2026, 2, 28, 10, tzinfo=UTC)) == "2026-02-28T10:00:00Z"


def test_ceil_minute_and_anchor() -> None:
    exact = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert ceil_minute(exact) == exact
    assert anchor("15m", exact) == (exact - timedelta(minutes=15), exact)


def test_resolve_strategy() -> None:
    view, _ = parse_view({"strategy": "ghost", "code": "X", "row": "4"}, NOW)
    resolved, notices = resolve_strategy(view, ["a", "b"], from_link=True)
    assert resolved.strategy == "a" and resolved.code is None and resolved.row is None
    assert "Unknown strategy" in notices[0].text
    fresh, quiet = resolve_strategy(View(NOW, NOW), ["a"], from_link=False)
    assert fresh.strategy == "a" and quiet == []
    same, none = resolve_strategy(resolved, ["a", "b"], from_link=True)
    assert same == resolved and none == []


def test_canonical_keeps_foreign_parameters() -> None:
    view, _ = parse_view({"window": "1h"}, NOW)
    diff = canonical({"embed": "true"}, view)
    assert diff.changed and diff.target["embed"] == "true" and "since" in diff.target


def test_compare_round_trips_and_defaults_to_the_previous_window() -> None:
    base = {"window": "custom", "since": "2026-02-28T09:00:00Z", "until": "2026-02-28T10:00:00Z"}
    view, notices = parse_view(base, NOW)
    assert notices == [] and view.compare == "previous"
    assert "compare" not in view.params()  # the default stays out of links
    for value in ("1d", "7d", "none"):
        view, notices = parse_view({**base, "compare": value}, NOW)
        assert notices == []
        assert view.compare == (None if value == "none" else value)
        assert view.params()["compare"] == value
        assert view.without_filters().compare == view.compare  # drill-downs keep it


@pytest.mark.parametrize(
    "bad", ["banana", "version:", "version:" + "x" * 101, "x" * 10_000, "<script>"]
)
def test_a_bad_compare_falls_back_with_a_notice(bad: str) -> None:
    view, notices = parse_view({"window": "24h", "compare": bad}, NOW)
    assert view.compare == "previous"
    assert [n.about for n in notices] == ["compare"]
    assert len(notices[0].text) < 400 and "<script>" not in notices[0].text
    if bad.startswith("version:"):
        assert "names no version" in notices[0].text


def test_compare_with_a_version_round_trips() -> None:
    view, notices = parse_view(
        {"window": "24h", "compare": "version: 1.4.0 ", "version": "1.5"}, NOW
    )
    assert notices == []
    assert (view.compare, view.version) == ("version:1.4.0", "1.5")
    assert view.params()["compare"] == "version:1.4.0"
    again, _ = parse_view(view.params(), NOW)
    assert again == view
