"""One field of an input payload: ``path=value`` as the runbook filters take it, and a payload's
value at a path as the database compares it (plain Python: the command line's parser and the
URL parser read it without loading the service layer)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_field", "payload_text"]


def payload_text(payload: Any, keys: tuple[str, ...]) -> str | None:
    """The value at ``keys`` of a payload as the database compares it (``json_text``):
    strings bare, booleans as ``true`` / ``false``, numbers as written, JSON null as ``None``."""
    value = payload
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, separators=(",", ":"))


def parse_field(text: str) -> tuple[tuple[str, ...], str]:
    """``applicant.country=DE`` as ``(("applicant", "country"), "DE")``; raises ``ValueError``."""
    path, sep, value = text.partition("=")
    keys = tuple(k.strip() for k in path.split("."))
    if not sep or not all(keys):
        raise ValueError(
            f"a payload filter reads path=value, e.g. applicant.country=DE (got {text[:60]!r})"
        )
    return keys, value.strip()
