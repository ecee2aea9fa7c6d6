"""Runbook: the newest runs of the strategy in the window, filtered; a row opens its detail.

With a request id (``request=``, typed here or in the sidebar) it lists that request's runs in
every strategy and at any time instead: a support ticket names a request, not a strategy.
"""

from stratlog.ui import context, panels, runs

state = context.current()
if state.view.request:
    panels.page_header("Runbook", state, "request search")
    runs.narrow_filters(state.view)
    runs.request_table(state.view, context.request_runs(state))
else:
    runbook = context.runbook(state)
    panels.page_header("Runbook", state, actions=lambda: runs.runbook_actions(state.view, runbook))
    runs.filters(state.view, runbook)
    runs.summary(state.view, runbook)
    runs.table(state.view, runbook)
    runs.pager(runbook)
