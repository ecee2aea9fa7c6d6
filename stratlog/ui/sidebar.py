"""The shared sidebar: navigation, strategy picker, UTC time window, refresh controls.

Widgets are views of the URL: each writes its change into ``st.query_params`` from its callback,
and the entry point reads the URL back on the rerun that follows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from stratlog import vocabulary as fmt
from stratlog.baselines import BASELINES, DEFAULT_BASELINE, VERSION_PREFIX
from stratlog.service.runbook import NO_VERSION
from stratlog.ui import context, nav
from stratlog.ui.state import (
    CUSTOM,
    NO_COMPARE,
    PRESET_LABELS,
    PRESETS,
    View,
    anchor,
    iso_utc,
    parse_utc,
)

K_STRATEGY = "w_strategy"
K_WINDOW = "w_window"
K_FROM = "w_from"
K_TO = "w_to"
K_AUTO = "w_auto"
K_COMPARE = "w_compare"
K_RANGE_ERROR = "w_range_error"
K_RAN_AT = "stratlog.ran_at"
#: The preset chosen in this session (or anchored to now by it): only that one slides.
K_LIVE = "stratlog.live_preset"
AUTO_REFRESH_S = 30
WINDOW_OPTIONS = [*PRESETS, CUSTOM]


def _params() -> dict[str, str]:
    return st.query_params.to_dict()


def _write(params: dict[str, str]) -> None:
    st.query_params.from_dict(params)


def brand() -> DeltaGenerator:
    """Title of the sidebar; returns a container for the navigation links (filled later)."""
    with st.sidebar:
        st.markdown("### :material/monitoring: stratlog")
        st.caption("Audit log of the scoring engine")
        return st.container()


def navigation(box: DeltaGenerator, view: View) -> None:
    """Links to every page, carrying the whole view in their URL."""
    with box:
        for page in nav.PAGES:
            nav.link(page, view)
        st.divider()


def _strategy_label(info: dict[str, Any]) -> str:
    last = info["lastCreatedAt"]
    seen = last.strftime("%m-%d %H:%M") if isinstance(last, datetime) else "never"
    return f"{fmt.visible(info['strategyId'])}  ({seen})"


def _on_strategy() -> None:
    params = _params()
    params["strategy"] = str(st.session_state[K_STRATEGY])
    for key in ("code", "case", "version", "before", "row"):  # they belong to the old strategy
        params.pop(key, None)
    _write(params)


def strategy_picker(view: View, strategies: list[dict[str, Any]]) -> None:
    """Searchable strategy picker showing row counts and last-seen time (UTC)."""
    info = {s["strategyId"]: s for s in strategies}
    st.session_state[K_STRATEGY] = view.strategy
    st.selectbox(
        "Strategy",
        list(info),
        key=K_STRATEGY,
        format_func=lambda sid: _strategy_label(info[sid]),
        on_change=_on_strategy,
        help="Type to search. Each entry: the strategy (its last run, UTC); below: its runs.",
    )
    chosen = info.get(view.strategy or "")
    if chosen is not None:
        seen = fmt.utc(chosen["lastCreatedAt"])
        st.caption(f"{fmt.count(chosen['count'])} runs recorded · last seen {seen}")


def _on_window() -> None:
    choice = st.session_state.get(K_WINDOW)
    params = _params()
    params.pop("before", None)  # a new window lists its newest runs first
    if choice in PRESETS:
        since, until = anchor(str(choice), datetime.now(UTC))
        params.update(window=str(choice), since=iso_utc(since), until=iso_utc(until))
        st.session_state[K_LIVE] = str(choice)  # chosen here: Refresh slides it to now
    elif choice == CUSTOM:
        params["window"] = CUSTOM
        st.session_state.pop(K_LIVE, None)
    _write(params)


def _on_custom() -> None:
    start, end = st.session_state.get(K_FROM), st.session_state.get(K_TO)
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        st.session_state[K_RANGE_ERROR] = "Give both ends of the window."
        return
    since, until = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    if since >= until:
        st.session_state[K_RANGE_ERROR] = "The window must end after it starts."
        return
    params = _params()
    params.pop("before", None)
    params.update(window=CUSTOM, since=iso_utc(since), until=iso_utc(until))
    st.session_state.pop(K_LIVE, None)
    _write(params)


def window_picker(view: View) -> None:
    """Presets (turned into absolute bounds at once) and a custom absolute range, all UTC."""
    st.session_state[K_WINDOW] = view.preset or CUSTOM
    st.segmented_control(
        "Time window (UTC)",
        WINDOW_OPTIONS,
        key=K_WINDOW,
        format_func=lambda o: PRESET_LABELS.get(o, "Custom"),
        on_change=_on_window,
        required=True,
        help="A preset becomes absolute UTC bounds in the URL, so a copied link keeps its rows.",
    )
    st.caption(f"From {fmt.utc(view.since)}  \nto {fmt.utc(view.until)}")
    if view.preset is None:
        _custom_range(view)


def live_window(view: View, params: Mapping[str, str]) -> View:
    """A preset from a link with absolute bounds opens as that absolute window.

    Opened days later, such a link must still show the incident's rows, labelled with their
    dates; only a preset chosen (or anchored to now) in this session slides with Refresh.
    """
    if view.preset is None:
        return view
    if _bounds_from(params, view) and st.session_state.get(K_LIVE) != view.preset:
        return view.replace(preset=None)
    st.session_state[K_LIVE] = view.preset
    return view


def _bounds_from(params: Mapping[str, str], view: View) -> bool:
    """True when the view's bounds are the link's own (not a fallback anchored to now)."""
    try:
        return (parse_utc(params["since"]), parse_utc(params["until"])) == (view.since, view.until)
    except (KeyError, ValueError):
        return False


def _custom_range(view: View) -> None:
    problem = st.session_state.pop(K_RANGE_ERROR, None)
    if problem is None:  # a refused range keeps what was typed, beside the message
        st.session_state[K_FROM] = view.since.replace(tzinfo=None, second=0, microsecond=0)
        st.session_state[K_TO] = view.until.replace(tzinfo=None, second=0, microsecond=0)
    lowest = datetime(2000, 1, 1)
    highest = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    with st.form("custom_window", border=False):
        for label, key in (("From (UTC)", K_FROM), ("To (UTC)", K_TO)):
            st.datetime_input(
                label,
                key=key,
                min_value=lowest,
                max_value=highest,
                format="YYYY-MM-DD",
                step=timedelta(minutes=5),
            )
        st.form_submit_button("Apply window", on_click=_on_custom, width="stretch")
    if problem:
        st.error(problem)


COMPARE_OPTIONS = [*BASELINES, NO_COMPARE]
COMPARE_LABELS = {
    "previous": "Previous window",
    "1d": "1 day earlier",
    "7d": "7 days earlier",
    NO_COMPARE: "No comparison",
}
K_VERSION = "w_version"
ALL_VERSIONS = ""


def _compare_label(option: str) -> str:
    if option.startswith(VERSION_PREFIX):
        return f"Version {option[len(VERSION_PREFIX) :]} (same window)"
    return COMPARE_LABELS.get(option, option)


def _on_compare() -> None:
    params = _params()
    choice = str(st.session_state.get(K_COMPARE) or DEFAULT_BASELINE)
    if choice == DEFAULT_BASELINE:
        params.pop("compare", None)
    else:
        params["compare"] = choice
    _write(params)


def compare_picker(view: View, versions: list[str]) -> None:
    """The baseline every figure is compared with (``compare=`` in the URL): another window
    of the same length, or another version that ran in this window."""
    current = view.compare or NO_COMPARE
    options = [*BASELINES]
    options += [f"{VERSION_PREFIX}{v}" for v in versions if v != view.version]
    if current not in options and current != NO_COMPARE:
        options.append(current)  # from the link: shown as chosen, even if it did not run here
    options.append(NO_COMPARE)
    st.session_state[K_COMPARE] = current
    st.selectbox(
        "Compare with",
        options,
        key=K_COMPARE,
        format_func=_compare_label,
        on_change=_on_compare,
        help="The Overview shows every figure beside the same figure in this baseline: a window "
        "of the same length, or another version's runs in this window; it says whether a "
        "rate's change is beyond noise.",
    )


def _on_version() -> None:
    params = _params()
    choice = str(st.session_state.get(K_VERSION) or ALL_VERSIONS)
    params.pop("before", None)
    if choice == ALL_VERSIONS:
        params.pop("version", None)
    else:
        params["version"] = choice
    _write(params)


def version_picker(view: View, versions: list[str]) -> None:
    """Limit every page to one strategyVersion (``version=`` in the URL)."""
    options = [ALL_VERSIONS, *versions]
    if view.version and view.version not in options:
        options.append(view.version)
    st.session_state[K_VERSION] = view.version or ALL_VERSIONS
    st.selectbox(
        "Version",
        options,
        key=K_VERSION,
        format_func=lambda v: "All versions" if v == ALL_VERSIONS else _version_option(v),
        on_change=_on_version,
        help="The versions that ran in this window. One chosen limits the Overview and the "
        "Runbook to its runs.",
    )


def _version_option(version: str) -> str:
    return fmt.NO_VERSION_LABEL if version == NO_VERSION else fmt.visible(version)


def request_finder(view: View) -> None:
    """Find the runs of a request id (a support ticket's), in every strategy: Enter or Find
    opens the Runbook listing them; a click on one opens it."""
    with st.form("find_request", border=False, enter_to_submit=True):
        value = st.text_input(
            "Find a request id", max_chars=200, placeholder="exact, any strategy",
            help="The runs of this request id in every strategy and at any time.",
        )  # fmt: skip
        found = st.form_submit_button("Find", icon=":material/search:", width="stretch")
    if found and value.strip():
        nav.go(nav.RUNBOOK, view.without_filters().replace(request=value.strip()))


def _refresh_now() -> None:
    """Drop cached results; a preset window chosen in this session slides to end now."""
    context.clear_data()
    params = _params()
    preset = params.get("window", "")
    if preset in PRESETS and st.session_state.get(K_LIVE) == preset:
        since, until = anchor(preset, datetime.now(UTC))
        params.update(since=iso_utc(since), until=iso_utc(until))
        _write(params)


def freshness() -> None:
    """Refresh button and the optional auto-refresh (off by default)."""
    st.divider()
    st.button("Refresh", icon=":material/refresh:", on_click=_refresh_now, width="stretch")
    st.toggle(f"Auto-refresh every {AUTO_REFRESH_S} s", key=K_AUTO, value=False)
    st.caption(
        f"Results are cached {context.DATA_TTL_S} s. Refresh fetches again; a preset chosen "
        "here then slides to end now (a window from a link stays put)."
    )
    st.session_state[K_RAN_AT] = time.monotonic()
    if st.session_state.get(K_AUTO):
        _auto_refresh()


@st.fragment(run_every=AUTO_REFRESH_S)
def _auto_refresh() -> None:
    """Every few seconds: refresh and rerun the whole app (skipped on the app's own run)."""
    if time.monotonic() - st.session_state.get(K_RAN_AT, 0.0) < AUTO_REFRESH_S / 2:
        return
    _refresh_now()
    st.rerun(scope="app")


def controls(
    view: View,
    strategies: list[dict[str, Any]],
    versions: Callable[[], list[str]],
    *,
    narrowing: bool = True,
) -> None:
    """Strategy, window, version, baseline and freshness controls (``versions`` lists the
    named versions that ran in the view's window; ``narrowing=False`` leaves out the version
    and baseline pickers, for a page that has neither)."""
    with st.sidebar:
        strategy_picker(view, strategies)
        window_picker(view)
        if narrowing:
            named = versions()
            version_picker(view, named)
            compare_picker(view, named)
        request_finder(view)
        freshness()
