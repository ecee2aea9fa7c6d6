"""Service layer: percentiles, histograms, best-effort recording, page-level fetches."""

from stratlog.service.overview import Overview, choose_bucket_seconds, fetch_overview
from stratlog.service.recording import Recorder, RecorderStats
from stratlog.service.stats import HistogramBin, Percentiles, percentiles, weighted_histogram

__all__ = [
    "HistogramBin",
    "Overview",
    "Percentiles",
    "Recorder",
    "RecorderStats",
    "choose_bucket_seconds",
    "fetch_overview",
    "percentiles",
    "weighted_histogram",
]
