"""Renderers of the Runbook and Row detail pages: filters, the runs table, one run's fields."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from stratlog import vocabulary as fmt
from stratlog.model.strategy_execution_log import STATUSES
from stratlog.service.runbook import NO_VERSION, ROW_FIELDS, Runbook
from stratlog.ui import exports, nav, tables
from stratlog.ui.state import DEFAULT_LIMIT, MAX_LIMIT, View
from stratlog.vocabulary import NO_RULE

K_STATUS = "f_status"
K_CODE = "f_code"
K_CASE = "f_case"
K_LIMIT = "f_limit"
K_VERSION = "f_version"
K_FIELD = "f_field"
K_REQUEST = "f_request"
ANY = "__any__"
ALL = "all"
LIMITS = (25, 50, 100, 200)
BADGE_COLORS = {"ok": "blue", "error": "red", "timeout": "orange", "limit": "violet"}


def _set_param(name: str, value: str | None) -> None:
    params = st.query_params.to_dict()
    params.pop("row", None)
    params.pop("before", None)  # a new list starts with its newest runs
    if value is None:
        params.pop(name, None)
    else:
        params[name] = value
    st.query_params.from_dict(params)


def _on_filter(name: str, key: str, default: str) -> None:
    value = str(st.session_state.get(key))
    _set_param(name, None if value in (default, "None") else value)


def _on_text(name: str, key: str) -> None:
    value = str(st.session_state.get(key) or "").strip()
    _set_param(name, value or None)


def _on_clear() -> None:
    params = st.query_params.to_dict()
    for name in ("status", "code", "case", "version", "field", "request", "before", "row"):
        params.pop(name, None)
    st.query_params.from_dict(params)


def _code_option(value: str) -> str:
    return "any error code" if value == ANY else fmt.visible(value)


def _case_option(value: str) -> str:
    if value == ANY:
        return "any case"
    return fmt.NO_RULE_LABEL if value == NO_RULE else fmt.visible(value)


def _options(view: View, runbook: Runbook) -> tuple[list[str], list[str], list[int]]:
    """Choices of the code, case and limit pickers (the URL's value always among them)."""
    codes = [ANY, *runbook.codes]
    cases = [ANY, *(NO_RULE if c is None else c for c in runbook.cases)]
    for values, chosen in ((codes, view.code), (cases, view.case)):
        if chosen and chosen not in values:
            values.append(chosen)
    return codes, cases, sorted({*LIMITS, view.limit})


def _pick(column: Any, label: str, options: list[Any], key: str, name: str, **kw: Any) -> None:
    """A selectbox bound to the query parameter ``name`` through its callback."""
    default = str(DEFAULT_LIMIT) if name == "limit" else ANY
    column.selectbox(label, options, key=key, on_change=_on_filter, args=(name, key, default), **kw)


def filters(view: View, runbook: Runbook) -> None:
    """Status, error code, case and limit; every change goes into the URL."""
    codes, cases, limits = _options(view, runbook)
    st.session_state.update(
        {K_STATUS: view.status or ALL, K_CODE: view.code or ANY, K_CASE: view.case or ANY}
    )
    st.session_state[K_LIMIT] = view.limit
    status, code, case, limit, clear = st.columns([3.2, 2, 2, 1, 1], gap="small")
    status.segmented_control(
        "Status", [ALL, *STATUSES], key=K_STATUS, required=True,
        on_change=_on_filter, args=("status", K_STATUS, ALL),
    )  # fmt: skip
    _pick(code, "Error code", codes, K_CODE, "code", format_func=_code_option)
    _pick(case, "Case", cases, K_CASE, "case", format_func=_case_option)
    _pick(limit, "Limit", limits, K_LIMIT, "limit", help=f"At most {MAX_LIMIT} runs.")
    filtered = view.status or view.code or view.case or view.version or view.field
    clear.button(
        "Clear", icon=":material/filter_alt_off:", on_click=_on_clear, width="stretch",
        disabled=not filtered, help="Remove every filter.",
    )  # fmt: skip
    narrow_filters(view)


def narrow_filters(view: View) -> None:
    """Version, one input payload field and a request id: typed, applied on Enter."""
    st.session_state.update(
        {K_VERSION: view.version or "", K_FIELD: view.field or "", K_REQUEST: view.request or ""}
    )
    version, field, request = st.columns([1, 2, 2], gap="small")
    version.text_input(
        "Version", key=K_VERSION, on_change=_on_text, args=("version", K_VERSION),
        placeholder="e.g. 1.5.0", max_chars=100,
        help=f"Runs of this strategyVersion exactly; {NO_VERSION} for runs without one.",
    )  # fmt: skip
    field.text_input(
        "Input payload field", key=K_FIELD, on_change=_on_text, args=("field", K_FIELD),
        placeholder="path=value, e.g. applicant.country=DE", max_chars=300,
        help="Runs whose inputPayload holds this value at this path (keys joined by dots). "
        "Strings as they are, true / false, numbers as written.",
    )  # fmt: skip
    request.text_input(
        "Request id", key=K_REQUEST, on_change=_on_text, args=("request", K_REQUEST),
        placeholder="exact; searched in every strategy", max_chars=200,
        help="The runs of this request id in every strategy and at any time.",
    )  # fmt: skip


def request_table(view: View, rows: list[dict[str, Any]]) -> None:
    """The runs of one request id in every strategy; selecting one opens it."""
    request = fmt.md_escape(fmt.clip(view.request or "", 80))
    if not rows:
        st.info(
            f"No run has the request id “{request}”, in any strategy, at any time.",
            icon=":material/search_off:",
        )
        return
    strategies = len({r["strategyId"] for r in rows})
    st.caption(
        f"{len(rows):,} run(s) of request id “{request}” in {strategies} strategy(ies), at any "
        "time, newest first (the window and the other filters do not apply)."
    )
    run = _runs_grid(rows, "rq_table")
    if run is not None:
        nav.go(nav.ROW, view.replace(row=int(run["id"]), strategy=str(run["strategyId"])))


def summary(view: View, runbook: Runbook) -> None:
    """How many runs match and which of them this page shows; how to see more."""
    if runbook.lost_start:
        st.warning(
            f"The link lists the runs older than run {view.before}, which is not in this "
            "database (deleted, or a mistyped link): showing the newest runs instead.",
            icon=":material/search_off:",
        )
    rows = runbook.rows
    if not rows:
        return
    of = f" of {runbook.matched:,}" if runbook.matched is not None else ""
    if runbook.paged:
        text = (
            f"Showing {len(rows):,}{of} matching runs, older than run {view.before} "
            f"({fmt.utc(runbook.start)})."
        )
    else:
        text = f"Showing the {len(rows):,} newest{of} matching runs."
    if runbook.more and view.limit < MAX_LIMIT:
        text += f" Raise the limit (up to {MAX_LIMIT}) or page to older runs to see more."
    elif runbook.more:
        text += f" Capped at {MAX_LIMIT} runs per page: page to older runs to see more."
    st.caption(text)


def _set_before(before: int | None) -> None:
    params = st.query_params.to_dict()
    params.pop("row", None)
    if before is None:
        params.pop("before", None)
    else:
        params["before"] = str(before)
    st.query_params.from_dict(params)


def pager(runbook: Runbook) -> None:
    """Keyset paging: back to the newest runs, on to the older ones."""
    if not (runbook.paged or runbook.more):
        return
    with st.container(horizontal=True, horizontal_alignment="right", gap="small"):
        st.button(
            "Newest runs", icon=":material/first_page:", key="pg_newest", type="tertiary",
            disabled=not runbook.paged, on_click=_set_before, args=(None,),
        )  # fmt: skip
        st.button(
            "Older runs", icon=":material/chevron_right:", icon_position="right",
            key="pg_older", type="tertiary", disabled=not runbook.more,
            on_click=_set_before, args=(runbook.last,),
        )  # fmt: skip


#: Pixel widths that fit the whole table beside the sidebar on a 1440 px wide screen (Streamlit's
#: "small" cut the duration's heading and pushed Points out of view); narrower screens scroll.
_RUNBOOK_COLUMNS = {
    "Run": st.column_config.NumberColumn(format="%d", width=70),
    "Time (UTC)": st.column_config.TextColumn(width=175),
    "Status": st.column_config.TextColumn(width=66),
    "Error code": st.column_config.TextColumn(width=175),
    "Case": st.column_config.TextColumn(width=160),
    "Message": st.column_config.TextColumn(
        width=260, help="First line of the error message (the whole one is in the run's detail)"
    ),
    "Duration (ms)": st.column_config.NumberColumn(format="%.2f", width=105),
    "Nodes": st.column_config.NumberColumn(format="localized", width=68),
    "Points": st.column_config.NumberColumn(format="%.1f", width=68),
    "Version": st.column_config.TextColumn(width=80),
    "Request id": st.column_config.TextColumn(width=150),
    "Strategy": st.column_config.TextColumn(width=140),
}


def table(view: View, runbook: Runbook) -> None:
    """The runs table; selecting a row opens its detail."""
    rows = runbook.rows
    if not rows:
        st.info(
            "No runs in this window match these filters. Clear a filter or widen the window.",
            icon=":material/filter_alt_off:",
        )
        return
    picked = _runs_grid(rows, "rb_table")
    if picked is not None:
        nav.go(nav.ROW, view.replace(row=int(picked["id"])))


def _runs_grid(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The runs as the runbook's table, status cells tinted; the run a click selected."""
    frame = tables.runbook_frame(rows)
    event = st.dataframe(
        frame.style.map(tables.status_cell_style, subset=["Status"]),
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=min(35 * (len(rows) + 1) + 3, 738),
        placeholder="–",
        column_config=_RUNBOOK_COLUMNS,
    )
    st.caption("Select a row to open the run.")
    selected = event.selection.rows
    return rows[selected[0]] if selected else None


# -- Row detail --------------------------------------------------------------------------------


def no_row(view: View) -> None:
    """The detail page without a run chosen."""
    st.info("No run selected: pick one in the runbook.", icon=":material/touch_app:")
    nav.link(nav.RUNBOOK, view.replace(row=None), label="Open the runbook")


def missing_row(view: View) -> None:
    """The detail page for an id that is not in the log."""
    st.warning(
        f"There is no run with id {view.row} in this database (deleted, or a mistyped link).",
        icon=":material/search_off:",
    )
    nav.link(nav.RUNBOOK, view.replace(row=None), label="Back to the runbook")


def _open_row(row_id: int) -> None:
    params = st.query_params.to_dict()
    params["row"] = str(row_id)
    st.query_params.from_dict(params)


def row_links(
    view: View, neighbours: tuple[int | None, int | None], *, matches: bool = True
) -> None:
    """Back to the runbook (filters kept), the newer and older run with the same filters."""
    newer, older = neighbours
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        nav.link(nav.RUNBOOK, view.replace(row=None), "Back to runbook", ":material/arrow_back:")
        # Buttons, not links: a link to the page already shown would not rerun it.
        for target, label, icon in (
            (newer, "Newer run", ":material/arrow_upward:"),
            (older, "Older run", ":material/arrow_downward:"),
        ):
            st.button(
                label,
                icon=icon,
                key=f"nb_{label}",
                disabled=target is None,
                on_click=_open_row,
                args=(target,),
                type="tertiary",
            )
        st.space("stretch")
        exports.copy_link(view, nav.ROW.url_path)
    if not matches:
        st.caption(
            "This run is outside the runbook's window or filters; newer / older are the "
            "nearest runs around it that match them."
        )


def row_heading(row: dict[str, Any]) -> None:
    """Run id with its status badge, when it finished, strategy and version."""
    status = row["status"]
    badge = f" :{BADGE_COLORS[status]}-badge[{status}]" if status in BADGE_COLORS else ""
    st.title(f"Run {int(row['id'])}{badge}", anchor=False)
    version = row["strategyVersion"]
    parts = [
        f"Finished {fmt.utc(row['createdAt'])}",
        f"strategy **{fmt.md_escape(str(row['strategyId']))}**",
        f"version {fmt.md_escape(str(version))}" if version is not None else "no version",
    ]
    st.caption(" · ".join(parts))


def row_facts(row: dict[str, Any]) -> None:
    """Headline figures of one run."""
    figures = [
        ("Duration", fmt.ms(row["durationMs"])),
        ("Nodes", fmt.count(row["nodes"])),
        ("Points", fmt.number(row["points"])),
    ]
    for cell, (label, value) in zip(st.columns(3), figures, strict=True):
        cell.metric(label, value, border=True)


def row_fields(row: dict[str, Any]) -> None:
    """Every scalar field, as a two-column table (plain text)."""
    st.markdown("**Fields**")
    frame = tables.fields_frame(row)
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=35 * (len(frame) + 1) + 3,
        column_config={"Field": st.column_config.TextColumn(width="small")},
    )


#: Text longer than this, or with more lines, gets a scrolling box of :data:`TALL_PX` instead
#: of growing the page (500 short lines made an 11,000-pixel block).
LONG_TEXT = 2_000
LONG_LINES = 15
TALL_PX = 360


def _height(text_length: int, lines: int = 1) -> int | None:
    return TALL_PX if text_length > LONG_TEXT or lines > LONG_LINES else None


def _text_block(text: str) -> None:
    """Log text shown literally (invisible characters by name); a long one scrolls in its box."""
    tall = _height(len(text), text.count("\n") + 1)
    shown = fmt.visible(text, multiline=True)
    st.code(shown, language=None, wrap_lines=True, height=tall if tall else "content")


def _payload(value: Any) -> None:
    if value is None:
        st.caption("null")
    elif isinstance(value, dict | list):
        size = len(json.dumps(value, default=str))
        with st.container(height=_height(size) or "content", border=False):
            st.json(fmt.visible_json(value), expanded=2)
    else:
        _text_block(str(value))


def row_texts(row: dict[str, Any]) -> None:
    """Error message as a code block; input and output payloads as collapsible JSON."""
    st.markdown("**Error message**")
    if row["errorMessage"] is None:
        st.caption("None: the run did not report an error.")
    else:
        _text_block(row["errorMessage"])
    with st.expander("Input payload (facts)", expanded=True, icon=":material/input:"):
        _payload(row["inputPayload"])
    with st.expander("Output payload", expanded=False, icon=":material/output:"):
        _payload(row["outputPayload"])


def other_strategy_notice() -> None:
    """The run belongs to another strategy than the sidebar's."""
    st.warning(
        "This run belongs to another strategy than the one picked in the sidebar; its "
        "fields below say which. Newer / older follow the run's own strategy.",
        icon=":material/swap_horiz:",
    )


def runbook_actions(view: View, runbook: Runbook) -> None:
    """The Runbook header's actions: "Copy link" and the listed runs as CSV."""
    exports.copy_link(view, nav.RUNBOOK.url_path)
    if runbook.rows and view.strategy is not None:
        exports.frame_csv_button(
            runbook.rows,
            strategy=view.strategy,
            since=view.since,
            until=view.until,
            kind="runbook",
            columns=ROW_FIELDS,
        )
