"""Runbook: the newest runs of the strategy in the window, filtered; a row opens its detail."""

from stratlog.ui import context, panels, runs

state = context.current()
runbook = context.runbook(state)
panels.page_header("Runbook", state, actions=lambda: runs.runbook_actions(state.view, runbook))
runs.filters(state.view, runbook)
runs.summary(state.view, runbook)
runs.table(state.view, runbook)
runs.pager(runbook)
