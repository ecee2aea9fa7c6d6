"""Renderers of the Health page: recorder counters and the rollup watermark's freshness."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import streamlit as st

from stratlog import vocabulary as fmt
from stratlog.serve import WORKER_ENV
from stratlog.service.health import Health, RollupStatus
from stratlog.service.replica import ReplicaState
from stratlog.ui import tables

_COUNTS = ("Submitted", "Written", "Dropped", "Failed", "Pending")
#: When this process first drew a page (this module is imported once per process).
_SERVING_SINCE = datetime.now(UTC)


def served_by() -> str:
    """Which dashboard process drew this page: under ``stratlog serve`` its number of N
    (``STRATLOG_WORKER``), its pid and port, and since when it serves."""
    number = os.environ.get(WORKER_ENV, "")
    if not number:
        who = "dashboard process (single)"
    elif re.fullmatch(r"\d{1,4}/\d{1,4}", number):
        who = f"dashboard process {number}"
    else:  # set by hand to something else: not markup, not trusted
        who = "dashboard process (unrecognised STRATLOG_WORKER)"
    port = st.get_option("server.port")
    return (
        f"Served by {who} · pid {os.getpid()} · port {port} · serving since "
        f"{_SERVING_SINCE:%Y-%m-%d %H:%M:%S} UTC"
    )


def replica_line(state: ReplicaState | None) -> str | None:
    """Where the dashboard reads when it is a read replica, and how current that is."""
    if state is None:
        return None
    where = "Reading a read replica (STRATLOG_READ_DATABASE_URL)"
    if not state.lagging:
        return f"{where} · up to date with its primary"
    return f"{where} · read replica: {state.describe()}"


def recorders(health: Health, now: datetime) -> None:
    """Totals, then one line per recorder process; an empty state before the first report."""
    st.markdown("**Recorders**")
    st.caption(
        "Each process that writes audit rows publishes its counters (submitted = written + "
        "dropped + failed + pending). Dropped and failed rows are missing from the log."
    )
    rows = health.recorders
    if not rows:
        st.info(
            "No recorder has reported yet. Recorders publish their counters with "
            "HealthPublisher (stratlog.service.health) every few seconds.",
            icon=":material/sensors_off:",
        )
        return
    totals = [
        ("Recorders", len(rows)),
        ("Written", sum(r.written for r in rows)),
        ("Dropped", sum(r.dropped for r in rows)),
        ("Failed", sum(r.failed for r in rows)),
        ("Pending", sum(r.pending for r in rows)),
    ]
    for cell, (label, value) in zip(st.columns(len(totals)), totals, strict=True):
        cell.metric(label, fmt.count(value), border=True)
    frame = tables.health_frame(rows, now)
    config = {name: st.column_config.NumberColumn(format="localized") for name in _COUNTS}
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config, placeholder="–")


def rollup(status: RollupStatus, now: datetime) -> None:
    """How far the rollup job has folded the audit rows (answers are exact either way)."""
    st.markdown("**Rollups**")
    if not status.ran:
        st.info(
            "The rollup job has not run on this database: every answer is read from the audit "
            "rows (exact, slower for long windows). Run `stratlog rollup --watch 60`.",
            icon=":material/schedule:",
        )
        return
    moved = fmt.utc(status.updatedAt) if status.updatedAt else "–"
    age = (now - status.updatedAt).total_seconds() if status.updatedAt else None
    figures = [
        ("Watermark (run id)", fmt.count(status.watermark)),
        ("Newest run id", fmt.count(status.newestId)),
        ("Ids above the watermark", fmt.count(status.behind)),
        ("Last moved", "–" if age is None else fmt.duration_label(round(max(age, 0))) + " ago"),
    ]
    for cell, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        cell.metric(label, value, border=True)
    st.caption(
        f"The watermark last moved at {moved}. Runs above it are read from the audit rows, so "
        "answers stay exact; a growing gap only makes long windows slower."
    )


def page(health: Health) -> None:
    """The whole Health page body."""
    now = datetime.now(UTC)
    recorders(health, now)
    st.space("small")
    rollup(health.rollup, now)
