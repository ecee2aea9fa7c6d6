"""Debian's Chromium as the browser tests and the dashboard benchmark launch it."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("STRATLOG_CHROMIUM", "/usr/bin/chromium")
# Headless as root, and nothing that phones home: this machine's network is closed.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A Streamlit page whose script run has finished.
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
