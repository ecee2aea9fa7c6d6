"""Relative and ISO-8601 time arguments, and the windows built from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stratlog.timeparse import TimeArgumentError, iso, parse_time, resolve_window

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        (" 2h ", timedelta(hours=2)),
        ("0m", timedelta(0)),
        ("now", timedelta(0)),
    ],
)
def test_relative_times_count_back_from_now(text: str, ago: timedelta):
    assert parse_time(text, NOW) == NOW - ago


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T06:00:00Z", datetime(2026, 3, 1, 6, tzinfo=UTC)),
        ("2026-03-01T06:00Z", datetime(2026, 3, 1, 6, tzinfo=UTC)),
        ("2026-03-01T06:00:00", datetime(2026, 3, 1, 6, tzinfo=UTC)),  # naive means UTC
        ("2026-03-01 06:00", datetime(2026, 3, 1, 6, tzinfo=UTC)),
        ("2026-03-01T08:00:00+02:00", datetime(2026, 3, 1, 6, tzinfo=UTC)),
        ("2026-03-01T01:00:00-05:00", datetime(2026, 3, 1, 6, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T06:00:00.250Z", datetime(2026, 3, 1, 6, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_iso_times_are_utc(text: str, expected: datetime):
    parsed = parse_time(text, NOW)
    assert parsed == expected and parsed.tzinfo == UTC


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2h ago", "-2h", "2H", "2 hours", "15x", "2026-13-01", "12:00"]
)
def test_bad_times_raise_a_value_error_with_a_hint(text: str):
    with pytest.raises(TimeArgumentError, match="relative time like 15m, 2h, 7d") as info:
        parse_time(text, NOW)
    assert isinstance(info.value, ValueError) and repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["99999999999d", "0001-01-01T00:00:00+01:00"])
def test_times_out_of_range_are_refused(text: str):
    with pytest.raises(TimeArgumentError, match=r"too far back|out of range"):
        parse_time(text, NOW)


def test_parse_time_defaults_to_the_real_now():
    assert abs(parse_time("0m") - datetime.now(UTC)) < timedelta(seconds=5)


def test_window_defaults_to_the_last_24_hours():
    window = resolve_window(None, None, NOW)
    assert (window.since, window.until) == (NOW - timedelta(hours=24), NOW)
    since_only = resolve_window(NOW - timedelta(hours=2), None, NOW)
    assert (since_only.since, since_only.until) == (NOW - timedelta(hours=2), NOW)
    until_only = resolve_window(None, NOW - timedelta(days=1), NOW)
    assert until_only.since == NOW - timedelta(days=2)


def test_window_normalises_to_utc_and_allows_an_empty_window():
    local = timezone(timedelta(hours=2))
    window = resolve_window(datetime(2026, 3, 1, 8, tzinfo=local), datetime(2026, 3, 1, 6), NOW)
    assert window.since == window.until == datetime(2026, 3, 1, 6, tzinfo=UTC)


def test_reversed_window_names_both_bounds():
    with pytest.raises(TimeArgumentError) as info:
        resolve_window(NOW, NOW - timedelta(hours=1), NOW)
    assert str(info.value) == (
        "the window ends before it starts: --since 2026-03-01T12:00:00Z is after "
        "--until 2026-03-01T11:00:00Z"
    )
    assert iso(datetime(2026, 3, 1, 6)) == "2026-03-01T06:00:00Z"
