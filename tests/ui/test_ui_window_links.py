"""Links keep their window: a copied preset link opens as its absolute window and never slides."""

from __future__ import annotations

from datetime import datetime, timedelta

from stratlog.ui.state import iso_utc, parse_utc
from tests.ui.conftest import FIXED_END, OpenApp


def refresh(at):  # type: ignore[no-untyped-def]
    next(b for b in at.button if b.label == "Refresh").click().run()
    return at


def test_a_copied_preset_link_opens_as_its_absolute_window(open_app: OpenApp, demo_url: str):
    since, until = iso_utc(FIXED_END - timedelta(hours=24)), iso_utc(FIXED_END)
    at = open_app(demo_url, strategy="kyc-depth", window="24h", since=since, until=until)
    assert not at.exception
    assert at.segmented_control(key="w_window").value == "custom"
    assert (at.query_params["since"], at.query_params["until"]) == (since, until)
    assert "last 24 h" not in at.caption[0].value and "2026-01-15 12:00 UTC" in at.caption[0].value
    refresh(at)  # days later, Refresh must not move the incident's window to now
    assert (at.query_params["since"], at.query_params["until"]) == (since, until)
    assert at.query_params["window"] == "custom"


def test_a_preset_chosen_here_slides_with_refresh(open_app: OpenApp, demo_url: str):
    at = open_app(demo_url, strategy="kyc-depth")
    at.segmented_control(key="w_window").set_value("6h").run()
    first = parse_utc(at.query_params["until"])
    assert at.segmented_control(key="w_window").value == "6h"
    refresh(at)
    assert at.query_params["window"] == "6h" and parse_utc(at.query_params["until"]) >= first


def test_a_refused_custom_range_keeps_what_was_typed(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
):
    at = open_app(demo_url, strategy="kyc-depth", window="custom", **window)
    at.datetime_input(key="w_from").set_value(datetime(2026, 1, 15, 9, 0))
    at.datetime_input(key="w_to").set_value(datetime(2026, 1, 15, 8, 0))
    next(b for b in at.button if b.label == "Apply window").click().run()
    assert "must end after it starts" in at.error[0].value
    assert at.datetime_input(key="w_from").value == datetime(2026, 1, 15, 9, 0)
    assert at.datetime_input(key="w_to").value == datetime(2026, 1, 15, 8, 0)
    assert at.query_params["since"] == window["since"]  # nothing applied
