"""Streamlit-facing helpers: async bridge, URL state, Altair chart builders, theme, formatting.

Importing this package imports nothing heavy; ``charts``, ``theme``, ``format``, ``state``,
``bridge`` and ``runbook`` never import Streamlit, so they can be reused outside the
app (e.g. to render chart PNGs server-side). ``context``, ``sidebar``, ``panels``, ``runs``,
``healthview``, ``exports``, ``auth`` and ``nav`` are the Streamlit glue the pages use.
"""
