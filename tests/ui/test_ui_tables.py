"""Dashboard glue around the charts: the Overview's tables and the chart-spec cache key."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from stratlog.ui import tables
from stratlog.ui.context import _fingerprint
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
    assert again is not first and _fingerprint(again) == _fingerprint(first)
    other = dataclasses.replace(first, errorCodes=[{"errorCode": "BOOM", "count": 8}])
    assert _fingerprint(other) != _fingerprint(first)


def test_a_fresh_result_and_its_cached_copy_have_one_key() -> None:
    """st.cache_data hands out unpickled copies: the copy must hit the specs the fresh result
    cached (its own pickle differed: each link's charts were built twice)."""
    fresh = make_overview()
    shared = fresh.since.tzinfo  # one tzinfo object across the fresh result's datetimes
    assert shared is not None and fresh.until.tzinfo is shared
    cached = pickle.loads(pickle.dumps(fresh, protocol=pickle.HIGHEST_PROTOCOL))
    assert pickle.dumps(cached) != pickle.dumps(fresh)  # why the key cannot be the raw pickle
    assert _fingerprint(cached) == _fingerprint(fresh)
    assert _fingerprint(pickle.loads(pickle.dumps(cached))) == _fingerprint(fresh)
