"""Dashboard glue around the charts: the Overview's tables and the chart-spec cache key."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from stratlog.ui import context, tables
from stratlog.ui.context import fingerprint
from stratlog.vocabulary import NO_RULE_LABEL
from tests.test_charts import make_overview


def test_tables() -> None:
    ov = make_overview()
    codes = tables.error_codes_frame(ov)
    assert codes.iloc[0]["Share of failures"] == pytest.approx(0.7)  # 7 of 10 failures
    assert tables.case_text(None, "ok") == NO_RULE_LABEL and tables.case_text(None, "error") is None


def test_the_spec_cache_key_is_the_overview_content() -> None:
    first = make_overview()
    again = copy.deepcopy(first)  # another fetch of the same result
    assert again is not first and fingerprint(again) == fingerprint(first)
    other = dataclasses.replace(first, errorCodes=[{"errorCode": "BOOM", "count": 8}])
    assert fingerprint(other) != fingerprint(first)


def test_a_fresh_result_and_its_cached_copy_have_one_key() -> None:
    """st.cache_data hands out unpickled copies: the copy must hit the specs the fresh result
    cached (its own pickle differed: each link's charts were built twice)."""
    fresh = make_overview()
    shared = fresh.since.tzinfo  # one tzinfo object across the fresh result's datetimes
    assert shared is not None and fresh.until.tzinfo is shared
    cached = pickle.loads(pickle.dumps(fresh, protocol=pickle.HIGHEST_PROTOCOL))
    assert pickle.dumps(cached) != pickle.dumps(fresh)  # why the key cannot be the raw pickle
    assert fingerprint(cached) == fingerprint(fresh)
    assert fingerprint(pickle.loads(pickle.dumps(cached))) == fingerprint(fresh)


def test_a_fetched_overview_carries_its_key_through_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key is computed once, when the result is fetched; cached copies carry it along."""
    fresh = make_overview()
    expected = fingerprint(copy.deepcopy(fresh))
    stamped = context._stamped(fresh)
    cached = pickle.loads(pickle.dumps(stamped, protocol=pickle.HIGHEST_PROTOCOL))

    def no_pickling(overview: object) -> bytes:
        raise AssertionError("the cached copy's key was computed again")

    monkeypatch.setattr(context, "_content_digest", no_pickling)
    assert fingerprint(cached) == expected
    other = dataclasses.replace(cached, errorCodes=[{"errorCode": "BOOM", "count": 8}])
    with pytest.raises(AssertionError, match="computed again"):  # a new result: no stamp
        fingerprint(other)


def test_the_trimmed_overview_of_a_comparison_has_a_key_of_its_own() -> None:
    fresh = make_overview()
    current = context._stamped(fresh)
    comparison = type("C", (), {"current": current})()  # only .current is read
    cut = context.trimmed_current(comparison, 1)  # type: ignore[arg-type]
    assert len(cut.errorCodes) <= 1
    assert fingerprint(cut) != fingerprint(current)
    assert fingerprint(cut) == fingerprint(context.trimmed_current(comparison, 1))  # type: ignore[arg-type]
    assert fingerprint(cut) != fingerprint(context.trimmed_current(comparison, 2))  # type: ignore[arg-type]
