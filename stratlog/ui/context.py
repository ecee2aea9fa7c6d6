"""Streamlit glue: one Backend per database URL, cached loaders, failures shown as messages.

``st.cache_resource`` owns the :class:`~stratlog.ui.bridge.Backend` (loop thread + engine);
``st.cache_data`` keeps plain results for a short time, keyed by database, strategy and absolute
window. A failed call raises inside the cached function, so nothing is cached and the next run
asks the database again: the app recovers by itself when the database comes back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

import streamlit as st

from stratlog import charts, export
from stratlog.baselines import INSIGHTS_BASELINES
from stratlog.config import load_settings
from stratlog.payload import parse_field
from stratlog.service.compare import Baseline, Comparison, fetch_comparison, trimmed
from stratlog.service.health import Health, fetch_health
from stratlog.service.insights import Insights, fetch_insights, parse_baseline
from stratlog.service.overview import Overview, fetch_overview
from stratlog.service.replica import ReplicaState, replica_state
from stratlog.service.runbook import (
    NO_VERSION,
    Runbook,
    RunbookQuery,
    fetch_neighbours,
    fetch_request,
    fetch_runbook,
)
from stratlog.service.timeline import DurationPoint, duration_bucket, fetch_duration_series
from stratlog.service.versions import Versions, fetch_versions
from stratlog.ui import nav
from stratlog.ui.bridge import Backend
from stratlog.ui.errors import DATABASE_ERRORS, describe
from stratlog.ui.state import View, iso_utc, parse_utc

T = TypeVar("T")

#: Seconds a fetched result is reused (the Refresh button drops it earlier).
DATA_TTL_S = 30
STRATEGIES_TTL_S = 60
HEALTH_TTL_S = 10
#: Seconds a read replica's lag is kept (every page shows it while it trails).
REPLICA_TTL_S = 2
#: Seconds between automatic retries while the database is unreachable.
RETRY_EVERY_S = 5
#: The charts the Overview page draws (the error codes are a table there).
SHOWN_CHARTS = ("status", "cases", "durations", "points")
_APP_KEY = "stratlog.app"
_FAILED_KEY = "stratlog.failed_at"


def database_url() -> str:
    """The URL the dashboard reads: ``STRATLOG_READ_DATABASE_URL`` (a read replica) when set,
    else ``STRATLOG_DATABASE_URL`` or the default."""
    return load_settings().reads_url


def _release(backend: Backend) -> None:
    backend.close()


@st.cache_resource(show_spinner=False, max_entries=4, on_release=_release)
def backend(url: str) -> Backend:
    """The one Backend (event loop thread + engine) for this database URL; it only reads."""
    return Backend(url, reader=True)


@st.cache_data(ttl=STRATEGIES_TTL_S, show_spinner=False, max_entries=8)
def _strategies(url: str) -> list[dict[str, Any]]:
    b = backend(url)
    return b.run(b.repository.list_strategies())


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=256)
def _overview(
    url: str, strategy: str, since: str, until: str, version: str | None = None
) -> Overview:
    b = backend(url)
    call = fetch_overview(
        b.repository, strategy, parse_utc(since), parse_utc(until), version=version
    )
    return _stamped(b.run(call))


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=128)
def _versions(url: str, strategy: str, since: str, until: str) -> Versions:
    b = backend(url)
    return b.run(fetch_versions(b.repository, strategy, parse_utc(since), parse_utc(until)))


class DurationSeries(tuple[DurationPoint, ...]):
    """Fetched duration percentiles per bucket, with their content digest (the chart-spec
    cache's key, computed once when fetched; see :func:`_stamped`)."""

    digest: bytes = b""


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=128)
def _durations(
    url: str, strategy: str, since: str, until: str, bucket: int, version: str | None
) -> DurationSeries:
    b = backend(url)
    call = fetch_duration_series(
        b.repository, strategy, parse_utc(since), parse_utc(until), bucket, version=version
    )
    series = DurationSeries(b.run(call))
    series.digest = _content_digest(tuple(series))
    return series


def _query(
    strategy: str, since: str, until: str, *filters: Any, narrow: tuple[str | None, ...] = ()
) -> RunbookQuery:
    """A runbook query; ``narrow`` = (version, payload field as path=value)."""
    version, field = (*narrow, None, None)[:2]
    query = RunbookQuery(strategy, parse_utc(since), parse_utc(until), *filters)
    payload = parse_field(field) if field else None
    return dataclasses.replace(query, version=version, payload=payload)


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=128)
def _comparison(
    url: str, strategy: str, since: str, until: str, baseline: str, version: str | None = None
) -> Comparison:
    b = backend(url)
    call = fetch_comparison(
        b.repository, strategy, parse_utc(since), parse_utc(until), Baseline.parse(baseline),
        version=version,
    )  # fmt: skip
    comparison = b.run(call)
    _stamped(comparison.current)
    _stamped(comparison.before)
    return comparison


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=64)
def _insights(url: str, strategy: str, since: str, until: str, baseline: str) -> Insights:
    b = backend(url)
    call = fetch_insights(
        b.repository, strategy, parse_utc(since), parse_utc(until), parse_baseline(baseline)
    )
    return b.run(call)


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=256)
def _runbook(
    url: str,
    strategy: str,
    since: str,
    until: str,
    status: str | None,
    code: str | None,
    case: str | None,
    limit: int,
    before: int | None,
    version: str | None = None,
    field: str | None = None,
) -> Runbook:
    b = backend(url)
    query = _query(
        strategy, since, until, status, code, case, limit, before, narrow=(version, field)
    )
    return b.run(fetch_runbook(b.repository, query))


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=64)
def _request(url: str, request: str) -> list[dict[str, Any]]:
    b = backend(url)
    return b.run(fetch_request(b.repository, request))


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=256)
def _neighbours(
    url: str,
    row_id: int,
    strategy: str,
    since: str,
    until: str,
    status: str | None,
    code: str | None,
    case: str | None,
    version: str | None = None,
    field: str | None = None,
) -> tuple[int | None, int | None]:
    b = backend(url)
    query = _query(strategy, since, until, status, code, case, narrow=(version, field))
    return b.run(fetch_neighbours(b.repository, query, row_id))


@st.cache_data(ttl=DATA_TTL_S, show_spinner=False, max_entries=256)
def _row(url: str, row_id: int) -> dict[str, Any] | None:
    b = backend(url)
    row = b.run(b.repository.get(row_id))
    return None if row is None else row.to_dict()


@st.cache_data(ttl=REPLICA_TTL_S, show_spinner=False, max_entries=8)
def _replica(url: str) -> ReplicaState | None:
    b = backend(url)
    return b.run(replica_state(b.engine))


def replica(url: str) -> ReplicaState | None:
    """The read replica's state when the dashboard reads one (``None`` otherwise, and when
    the question fails: the page's own queries then say what is wrong)."""
    if url != load_settings().read_database_url:
        return None
    try:
        return _replica(url)
    except DATABASE_ERRORS:
        return None


def replica_lag(url: str) -> ReplicaState | None:
    """:func:`replica`, only while it trails enough to say so on every page."""
    state = replica(url)
    return state if state is not None and state.lagging else None


@st.cache_data(ttl=HEALTH_TTL_S, show_spinner=False, max_entries=8)
def _health(url: str) -> Health:
    b = backend(url)
    return b.run(fetch_health(b.repository.session_factory))


_DIGEST = "_stratlog_digest"


def _content_digest(overview: object) -> bytes:
    """A digest of a fetched Overview's content: the hash of its pickled *copy*.

    Streamlit's own hasher walks a dataclass field by field in Python (~8 ms for a 24 h
    Overview, paid by each chart call). The bytes are those of a pickled copy: a fresh result
    and the copy ``st.cache_data`` hands out on the next run share their objects differently
    (one UTC tzinfo, or one per datetime), so their own pickles differ and every link built its
    charts twice; copies pickle alike.
    """
    copy = pickle.loads(pickle.dumps(overview, protocol=pickle.HIGHEST_PROTOCOL))
    return hashlib.blake2b(pickle.dumps(copy, protocol=pickle.HIGHEST_PROTOCOL)).digest()


def _stamped(overview: Overview) -> Overview:
    """The Overview with its content digest attached, computed once when it is fetched: the
    cache stores (pickles) the stamp with the result, so every later run's chart-spec calls
    find it instead of pickling the whole Overview again (that was most of a cached Overview
    page's own CPU, bench/profile_pages.py)."""
    object.__setattr__(overview, _DIGEST, _content_digest(overview))
    return overview


def trimmed_current(comparison: Comparison, top: int) -> Overview:
    """The comparison's Overview with its code and case lists cut to ``top``
    (:func:`~stratlog.service.compare.trimmed`), stamped with a digest derived from the
    fetched one's: a pure function of it and ``top``."""
    cut = trimmed(comparison.current, top)
    stamp = getattr(comparison.current, _DIGEST, None)
    if isinstance(stamp, bytes):
        derived = hashlib.blake2b(stamp + b"|trimmed|" + str(top).encode()).digest()
        object.__setattr__(cut, _DIGEST, derived)
    return cut


def fingerprint(overview: Overview) -> bytes:
    """The cache key of an Overview in the chart-spec caches: its stamp, or its digest."""
    stamp = getattr(overview, _DIGEST, None)
    return stamp if isinstance(stamp, bytes) else _content_digest(overview)


@st.cache_data(
    ttl=DATA_TTL_S, show_spinner=False, max_entries=64, hash_funcs={Overview: fingerprint}
)
def overview_specs(overview: Overview, before: Overview | None = None) -> dict[str, dict[str, Any]]:
    """Vega-Lite specs of the Overview charts, built and validated once per fetched result
    (with ``before``, the baseline's Overview, drawn into the timeseries and points). The
    timeseries, which also draws the versions, is :func:`timeseries_spec`."""
    built = charts.overview_charts(overview, selectable=True, before=before, only=SHOWN_CHARTS)
    return {name: export.to_spec(c) for name, c in built.items()}


@st.cache_data(
    ttl=DATA_TTL_S, show_spinner=False, max_entries=64, hash_funcs={Overview: fingerprint}
)
def timeseries_spec(
    overview: Overview,
    before: Overview | None = None,
    marks: tuple[tuple[str, datetime], ...] = (),
) -> dict[str, Any]:
    """The Overview's timeseries (selectable: a bucket, a dragged range), with the baseline and
    a rule at each of ``marks`` (label, time): where a version ran first."""
    offset = overview.since - before.since if before is not None else timedelta(0)
    chart = charts.timeseries(
        overview.timeseries, overview.bucketSeconds, overview.since, overview.until,
        baseline=None if before is None else before.timeseries, offset=offset, marks=marks,
        selectable=True,
    )  # fmt: skip
    return export.to_spec(chart)


@st.cache_data(
    ttl=DATA_TTL_S, show_spinner=False, max_entries=64,
    hash_funcs={DurationSeries: lambda series: series.digest},
)  # fmt: skip
def duration_spec(
    points: DurationSeries,
    baseline: DurationSeries,
    since: datetime,
    until: datetime,
    bucket: int,
    offset: timedelta,
    marks: tuple[tuple[str, datetime], ...] = (),
) -> dict[str, Any]:
    """The "Duration over time" chart's spec, built once per fetched series."""
    chart = charts.duration_lines(
        points, since, until, bucket, baseline=baseline, offset=offset, marks=marks
    )
    return export.to_spec(chart)


def clear_data() -> None:
    """Forget every cached result (the engine stays)."""
    loaders = (
        _strategies, _overview, _comparison, _versions, _durations, _insights, _runbook,
        _request, _neighbours, _row, _health,
    )  # fmt: skip
    for cached in (*loaders, overview_specs, timeseries_spec, duration_spec):
        cached.clear()


@dataclass(frozen=True)
class AppState:
    """What the entry point resolved for this run: database, view and the strategy list."""

    url: str
    view: View
    strategies: list[dict[str, Any]]
    started: datetime

    def strategy_info(self) -> dict[str, Any] | None:
        """The picker entry of the current strategy."""
        return next((s for s in self.strategies if s["strategyId"] == self.view.strategy), None)


def remember(state: AppState) -> None:
    """Hand the resolved state to the page script of this run."""
    st.session_state[_APP_KEY] = state


def current() -> AppState:
    """The state the entry point resolved in this run (taken: the next run must resolve again)."""
    state = st.session_state.pop(_APP_KEY, None)
    if not isinstance(state, AppState):
        # A page ran without dashboard.py: the first request of a fresh server straight to a
        # page URL (Streamlit still treats pages/ as an old-style page directory), or a rerun
        # that skipped the entry point. Declaring the navigation switches that off; the rerun
        # goes through the entry point, so the gate and the URL are always checked first.
        st.navigation(nav.pages(), position="hidden")
        st.rerun()
    return state


def _guard(url: str, loader: Callable[..., T], *args: Any) -> T:
    try:
        return loader(*args)
    except DATABASE_ERRORS as exc:
        show_failure(url, exc)


def show_failure(url: str, exc: BaseException) -> NoReturn:
    """Say what is wrong and what to do, keep retrying in the background, stop the page."""
    failure = describe(exc, url)
    st.session_state[_FAILED_KEY] = time.monotonic()
    st.error(f"**{failure.title}** {failure.hint}", icon=":material/database_off:")
    st.code(failure.cause, language=None, wrap_lines=True)
    _retry_probe(url)
    st.stop()


@st.fragment(run_every=RETRY_EVERY_S)
def _retry_probe(url: str) -> None:
    """While the database is down: try again every few seconds and rerun the app once it answers."""
    st.caption(f"Retrying every {RETRY_EVERY_S} s · last attempt {datetime.now(UTC):%H:%M:%S} UTC")
    if time.monotonic() - st.session_state.get(_FAILED_KEY, 0.0) < RETRY_EVERY_S / 2:
        return  # the inline call of the failing run itself: it has just tried
    st.session_state[_FAILED_KEY] = time.monotonic()
    try:
        _strategies.clear()
        _strategies(url)
    except DATABASE_ERRORS:
        return
    st.session_state.pop(_FAILED_KEY, None)
    st.rerun(scope="app")


def load_strategies(url: str) -> list[dict[str, Any]]:
    """Every strategy with row count and last-seen time (cached a minute); raises on failure."""
    return _strategies(url)


def forget_strategies() -> None:
    """Drop the cached strategy list (e.g. while waiting for the first rows)."""
    _strategies.clear()


def overview_version(view: View) -> str | None:
    """The version the Overview is limited to: the view's, unless it is "runs without one"
    (which only the runbook filters)."""
    return None if view.version in (None, NO_VERSION) else view.version


def overview(app: AppState) -> Overview:
    """The Overview of the current strategy and window (one service call, cached)."""
    v = app.view
    assert v.strategy is not None
    window = (iso_utc(v.since), iso_utc(v.until))
    return _guard(app.url, _overview, app.url, v.strategy, *window, overview_version(v))


def comparison(app: AppState) -> tuple[Comparison | None, str | None]:
    """The Overview of the view beside its baseline's (cached), or ``None`` when the view
    compares with nothing; and why not, when the chosen comparison cannot be made."""
    v = app.view
    if v.compare is None:
        return None, None
    assert v.strategy is not None
    baseline = Baseline.parse(v.compare)
    try:
        baseline.window(v.since, v.until)
    except ValueError as exc:
        return None, str(exc)  # a window near the year 1 has no baseline: the plain Overview
    window = (iso_utc(v.since), iso_utc(v.until))
    version = overview_version(v)
    if baseline.is_version and version == baseline.version:
        return None, f"version {baseline.version} is compared with itself: choose another"
    try:
        found = _guard(app.url, _comparison, app.url, v.strategy, *window, baseline.text, version)
    except LookupError as exc:
        return None, str(exc)
    if baseline.is_version and not found.before.total:
        return None, f"no run of version {baseline.version} in this window to compare with"
    return found, None


def versions(app: AppState) -> Versions:
    """The versions of the view's strategy with runs in the window (cached)."""
    v = app.view
    assert v.strategy is not None
    window = (iso_utc(v.since), iso_utc(v.until))
    return _guard(app.url, _versions, app.url, v.strategy, *window)


def insights(app: AppState) -> tuple[Insights | None, str | None]:
    """The findings of the view's strategy and window against the Insights page's baseline
    (cached), or ``None`` and why not (a window with no baseline before the year 1)."""
    v = app.view
    assert v.strategy is not None
    try:
        parse_baseline(v.baseline).window(v.since, v.until)
    except ValueError as exc:
        return None, str(exc)
    window = (iso_utc(v.since), iso_utc(v.until))
    return _guard(app.url, _insights, app.url, v.strategy, *window, v.baseline), None


def insights_loader(app: AppState) -> Callable[[], Insights | None]:
    """A loader of the view's findings (against the comparison's window when the Overview
    compares with one, else the 7 days before; every version), for the Overview's snapshot:
    it runs when the zip is built, in the download's thread, so it calls the backend directly
    rather than through the page's cache."""
    v = app.view
    assert v.strategy is not None
    b = backend(app.url)
    strategy, since, until = v.strategy, v.since, v.until
    # The rule of `stratlog snapshot`: the comparison's window when it is one, else the week.
    baseline = parse_baseline(v.compare if v.compare in INSIGHTS_BASELINES else None)

    def load() -> Insights | None:
        try:
            return b.run(fetch_insights(b.repository, strategy, since, until, baseline))
        except ValueError:
            return None  # a window whose baseline would start before the year 1

    return load


def durations(
    app: AppState, ov: Overview, before: Overview | None
) -> tuple[int, DurationSeries, DurationSeries]:
    """The bucket size and the duration percentiles per bucket, now and in the baseline."""
    bucket = duration_bucket((ov.until - ov.since).total_seconds(), ov.bucketSeconds)
    now = _guard(
        app.url, _durations, app.url, ov.strategyId, iso_utc(ov.since), iso_utc(ov.until),
        bucket, ov.version,
    )  # fmt: skip
    then = DurationSeries()
    if before is not None:
        then = _guard(
            app.url, _durations, app.url, before.strategyId, iso_utc(before.since),
            iso_utc(before.until), bucket, before.version,
        )  # fmt: skip
    return bucket, now, then


def runbook(app: AppState) -> Runbook:
    """One page of runbook rows for the view's strategy, window, filters and page (cached)."""
    v = app.view
    assert v.strategy is not None
    window = (iso_utc(v.since), iso_utc(v.until))
    args = (app.url, v.strategy, *window, v.status, v.code, v.case, v.limit, v.before)
    return _guard(app.url, _runbook, *args, v.version, v.field)


def request_runs(app: AppState) -> list[dict[str, Any]]:
    """Every run of the view's request id, in every strategy, newest first (cached)."""
    assert app.view.request is not None
    return _guard(app.url, _request, app.url, app.view.request)


def runbook_query(app: AppState, strategy: str) -> RunbookQuery:
    """The view's window and filters as a query over ``strategy``."""
    v = app.view
    payload = parse_field(v.field) if v.field else None
    return RunbookQuery(
        strategy, v.since, v.until, v.status, v.code, v.case, v.limit, v.before,
        version=v.version, payload=payload,
    )  # fmt: skip


def neighbours(app: AppState, strategy: str, row_id: int) -> tuple[int | None, int | None]:
    """Newer and older run around ``row_id`` with the view's window and filters (cached)."""
    v = app.view
    window = (iso_utc(v.since), iso_utc(v.until))
    args = (app.url, row_id, strategy, *window, v.status, v.code, v.case, v.version, v.field)
    return _guard(app.url, _neighbours, *args)


def row(app: AppState, row_id: int) -> dict[str, Any] | None:
    """Every field of one run, or ``None`` when no run has this id."""
    return _guard(app.url, _row, app.url, row_id)


def health(app: AppState) -> Health:
    """Recorder counters and the rollup status (cached a few seconds)."""
    return _guard(app.url, _health, app.url)
