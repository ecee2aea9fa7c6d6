"""AppTest: the Runbook page (filters from the URL, limit, selection, failures)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from streamlit.testing.v1 import AppTest

from stratlog.ui.state import iso_utc, parse_utc
from stratlog.vocabulary import NO_RULE, NO_RULE_LABEL

OpenApp = Callable[..., AppTest]
RUNBOOK = "pages/runbook.py"


def table(at: AppTest) -> Any:
    """The runbook's dataframe."""
    (frame,) = at.dataframe
    return frame.value


def test_happy_path_lists_newest_runs_first(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="credit-limit", **window)
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Runbook"]
    rows = table(at)
    assert len(rows) == 50  # the default limit
    times = list(rows["Time (UTC)"])
    assert times == sorted(times, reverse=True)
    assert all(window["since"][:10] <= t[:10] <= window["until"][:10] for t in times)
    assert any("Showing the 50 newest" in c.value for c in at.caption)


def test_status_filter_from_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="fraud-screen", status="error", **window)
    rows = table(at)
    assert len(rows) > 0
    assert set(rows["Status"]) == {"error"}
    assert at.segmented_control(key="f_status").value == "error"


def test_error_code_filter_from_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="fraud-screen", code="UPSTREAM_UNAVAILABLE", **window)
    rows = table(at)
    assert len(rows) > 0
    assert set(rows["Error code"]) == {"UPSTREAM_UNAVAILABLE"}
    assert at.selectbox(key="f_code").value == "UPSTREAM_UNAVAILABLE"


def test_no_rule_case_filter(open_app: OpenApp, demo_url: str, window: dict[str, str]) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="promo-eligibility", case=NO_RULE, **window)
    rows = table(at)
    assert len(rows) > 0
    # "No rule matched" is the fallthrough of ok runs: a failed run (no case either) is not in it.
    assert set(rows["Status"]) == {"ok"} and set(rows["Case"]) == {NO_RULE_LABEL}


def test_limit_and_cap(open_app: OpenApp, demo_url: str, window: dict[str, str]) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="credit-limit", limit=10, **window)
    assert len(table(at)) == 10
    capped = open_app(demo_url, RUNBOOK, strategy="credit-limit", limit=1000, **window)
    assert any("at most 200" in w.value for w in capped.warning)
    assert capped.query_params["limit"] == "200"
    assert len(table(capped)) <= 200


def test_nothing_matches(open_app: OpenApp, demo_url: str, window: dict[str, str]) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="credit-limit", code="NO_SUCH_CODE", **window)
    assert not at.exception
    assert not at.dataframe
    assert any("No runs in this window match" in i.value for i in at.info)


def test_empty_window(open_app: OpenApp, demo_url: str, demo_end: datetime) -> None:
    start = demo_end + timedelta(days=3)
    at = open_app(
        demo_url,
        RUNBOOK,
        strategy="kyc-depth",
        since=iso_utc(start),
        until=iso_utc(start + timedelta(hours=1)),
    )
    assert not at.exception
    assert any("No runs in this window" in i.value for i in at.info)


def test_selecting_a_row_puts_it_in_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="kyc-depth", status="ok", **window)
    first = int(table(at)["Run"].iloc[0])
    at.session_state["rb_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["row"] == str(first)
    assert at.query_params["status"] == "ok"  # the filters travel along


def test_changing_a_filter_rewrites_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="kyc-depth", row=5, **window)
    at.segmented_control(key="f_status").set_value("limit").run()
    assert at.query_params["status"] == "limit"
    assert "row" not in at.query_params  # a new list: the selected row no longer applies


def test_unknown_strategy_and_database_down(
    open_app: OpenApp, demo_url: str, down_url: str
) -> None:
    unknown = open_app(demo_url, RUNBOOK, strategy="ghost")
    assert not unknown.exception
    assert any("Unknown strategy" in w.value for w in unknown.warning)
    down = open_app(down_url, RUNBOOK, strategy="credit-limit")
    assert not down.exception
    assert "Cannot reach the database" in down.error[0].value


def test_older_runs_pages_back_and_newest_returns(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="credit-limit", limit=25, **window)
    first = table(at)
    assert any("Raise the limit" in c.value for c in at.caption)
    at.button(key="pg_older").click().run()
    assert not at.exception
    assert at.query_params["before"] == str(first["Run"].iloc[-1])
    at = open_app(demo_url, RUNBOOK, **at.query_params)  # the URL the browser now shows
    second = table(at)
    assert len(second) == 25 and max(second["Time (UTC)"]) <= min(first["Time (UTC)"])
    assert not set(second["Run"]) & set(first["Run"])
    assert any("older than run" in c.value for c in at.caption)
    at.button(key="pg_newest").click().run()
    assert "before" not in at.query_params
    assert list(table(open_app(demo_url, RUNBOOK, **at.query_params))["Run"]) == list(first["Run"])


def test_a_full_page_of_200_says_capped(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    wide = {**window, "since": iso_utc(parse_utc(window["since"]) - timedelta(days=1))}
    at = open_app(demo_url, RUNBOOK, strategy="credit-limit", limit=200, **wide)
    assert len(table(at)) == 200
    assert any("Capped at 200 runs per page" in c.value for c in at.caption)
    assert not at.button(key="pg_older").disabled


def test_a_lost_page_start_falls_back_to_the_newest(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="credit-limit", before=987654321, **window)
    assert not at.exception
    assert any("not in this database" in w.value for w in at.warning)
    assert len(table(at)) == 50


def test_version_and_payload_filters_from_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str], backend_for: Any
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="pricing-tier", version="1.5.0",
                  field="applicant.country=DE", **window)  # fmt: skip
    assert not at.exception and not at.warning
    rows = table(at)
    assert len(rows) > 0 and set(rows["Version"]) == {"1.5.0"}
    assert at.text_input(key="f_version").value == "1.5.0"
    backend = backend_for(demo_url)
    for run_id in list(rows["Run"])[:5]:
        run = backend.run(backend.repository.get(int(run_id)))
        assert run.inputPayload["applicant"]["country"] == "DE"
    bad = open_app(demo_url, RUNBOOK, strategy="pricing-tier", field="no-equals-sign", **window)
    assert any("not path=value" in w.value for w in bad.warning)
    assert "field" not in bad.query_params


def test_a_request_id_lists_its_runs_in_every_strategy(
    open_app: OpenApp, demo_url: str, backend_for: Any
) -> None:
    backend = backend_for(demo_url)
    [run] = backend.run(backend.repository.list_for_strategy(strategyId="kyc-depth", limit=1))
    # From another strategy's view: a support ticket names a request, not a strategy.
    at = open_app(demo_url, RUNBOOK, strategy="credit-limit", request=run.requestId)
    assert not at.exception and not at.warning
    rows = table(at)
    assert list(rows["Run"]) == [run.id] and list(rows["Strategy"]) == ["kyc-depth"]
    assert list(rows["Request id"]) == [run.requestId]
    none = open_app(demo_url, RUNBOOK, strategy="credit-limit", request="x" * 10_000)
    assert any("too long" in w.value for w in none.warning)
    missing = open_app(demo_url, RUNBOOK, strategy="credit-limit", request="req-nope")
    assert any("No run has the request id" in i.value for i in missing.info)
