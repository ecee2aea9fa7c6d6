"""Renderers of the Runbook and Row detail pages: filters, the runs table, one run's fields."""

from __future__ import annotations

from typing import Any

import streamlit as st

from stratlog.model.strategy_execution_log import STATUSES
from stratlog.ui import format as fmt
from stratlog.ui import nav, tables
from stratlog.ui.runbook import Runbook
from stratlog.ui.state import DEFAULT_LIMIT, MAX_LIMIT, NO_RULE, View

K_STATUS = "f_status"
K_CODE = "f_code"
K_CASE = "f_case"
K_LIMIT = "f_limit"
ANY = "__any__"
ALL = "all"
LIMITS = (25, 50, 100, 200)
BADGE_COLORS = {"ok": "blue", "error": "red", "timeout": "orange", "limit": "violet"}


def _set_param(name: str, value: str | None) -> None:
    params = st.query_params.to_dict()
    params.pop("row", None)
    if value is None:
        params.pop(name, None)
    else:
        params[name] = value
    st.query_params.from_dict(params)


def _on_filter(name: str, key: str, default: str) -> None:
    value = str(st.session_state.get(key))
    _set_param(name, None if value in (default, "None") else value)


def _on_clear() -> None:
    params = st.query_params.to_dict()
    for name in ("status", "code", "case", "row"):
        params.pop(name, None)
    st.query_params.from_dict(params)


def _code_option(value: str) -> str:
    return "any error code" if value == ANY else value


def _case_option(value: str) -> str:
    if value == ANY:
        return "any case"
    return fmt.NO_RULE_LABEL if value == NO_RULE else value


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
    clear.button(
        "Clear", icon=":material/filter_alt_off:", on_click=_on_clear, width="stretch",
        disabled=not (view.status or view.code or view.case), help="Remove every filter.",
    )  # fmt: skip


def summary(view: View, runbook: Runbook) -> None:
    """How many runs match, whether the list is capped, and how far back it searched."""
    shown = runbook.shown(view.limit)
    if not shown:
        return
    if runbook.complete:
        text = f"Showing the {len(shown):,} newest of {runbook.matched:,} matching runs."
    else:
        text = f"Showing the {len(shown):,} newest matching runs."
    if runbook.matched > len(shown) and view.limit < MAX_LIMIT:
        text += f" Raise the limit (up to {MAX_LIMIT}) to see more."
    elif runbook.matched > len(shown):
        text += f" Capped at {MAX_LIMIT} runs: narrow the window or the filters to see older ones."
    st.caption(text)
    reach = runbook.reach
    if reach is not None and (len(shown) < view.limit or shown[-1]["createdAt"] < reach):
        st.info(
            f"Only the newest {MAX_LIMIT} runs of each status can be searched; they reach back to "
            f"{fmt.utc(reach)}. Older runs of this window may be missing here: narrow the "
            "window to end earlier, or filter by status.",
            icon=":material/history_toggle_off:",
        )


_RUNBOOK_COLUMNS = {
    "Run": st.column_config.NumberColumn(format="%d", width="small"),
    "Time (UTC)": st.column_config.TextColumn(width="medium"),
    "Status": st.column_config.TextColumn(width="small"),
    "Duration (ms)": st.column_config.NumberColumn(format="%.2f", width="small"),
    "Nodes": st.column_config.NumberColumn(format="localized", width="small"),
    "Points": st.column_config.NumberColumn(format="%.1f", width="small"),
}


def table(view: View, runbook: Runbook) -> None:
    """The runs table; selecting a row opens its detail."""
    rows = runbook.shown(view.limit)
    if not rows:
        st.info(
            "No runs in this window match these filters. Clear a filter or widen the window.",
            icon=":material/filter_alt_off:",
        )
        return
    frame = tables.runbook_frame(rows)
    styled = frame.style.map(tables.status_cell_style, subset=["Status"])
    event = st.dataframe(
        styled,
        key="rb_table",
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=min(35 * (len(rows) + 1) + 3, 738),
        placeholder="–",
        column_config=_RUNBOOK_COLUMNS,
    )
    selected = event.selection.rows
    if selected:
        nav.go(nav.ROW, view.replace(row=int(rows[selected[0]]["id"])))
    st.caption("Select a row to open the run.")


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


def row_links(view: View, runbook: Runbook, row_id: int) -> None:
    """Back to the runbook (filters kept), newer and older run of the same list."""
    newer, older = runbook.neighbours(row_id)
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
    if not runbook.contains(row_id):
        st.caption(
            "Newer / older follow the runbook's list (same strategy, window and filters); "
            "this run is not in it, so they are off."
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


def _payload(value: Any) -> None:
    if value is None:
        st.caption("null")
    elif isinstance(value, dict | list):
        st.json(value, expanded=2)
    else:
        st.code(str(value), language=None, wrap_lines=True)


def row_texts(row: dict[str, Any]) -> None:
    """Error message as a code block; input and output payloads as collapsible JSON."""
    st.markdown("**Error message**")
    if row["errorMessage"] is None:
        st.caption("None: the run did not report an error.")
    else:
        st.code(row["errorMessage"], language=None, wrap_lines=True)
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
