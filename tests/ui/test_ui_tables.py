"""Dashboard glue around the charts: the Overview's tables and the chart-spec cache key."""

from __future__ import annotations

import copy
import dataclasses

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
