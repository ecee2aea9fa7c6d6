"""Rollups: the fold job, the read plan over rollup and raw rows, and retention.

The three share the grains (10 minutes, an hour, a day) and the watermark: the job folds audit
rows up to the watermark (:mod:`.job`), readers combine whole rollup buckets with raw rows at
the edges and above the watermark (:mod:`.plan`), and retention drops old buckets and rows in
an order that keeps both consistent (:mod:`.retention`).
"""

from stratlog.rollups.job import RollupJob, RollupRun

__all__ = ["RollupJob", "RollupRun"]
