"""The two expected failures of a command, each one line on stderr and an exit code."""

from __future__ import annotations


class UsageError(Exception):
    """A bad argument: exit code 2 and one line on stderr."""


class CommandError(Exception):
    """The command cannot do its job (no table, unwritable output): exit code 1, one line."""
