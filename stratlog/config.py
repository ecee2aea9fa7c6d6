"""Configuration from one place: ``STRATLOG_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///stratlog.db"


@dataclass(frozen=True)
class Settings:
    """Runtime settings; build with :func:`load_settings`."""

    database_url: str = DEFAULT_DATABASE_URL
    pool_size: int = 5
    query_timeout_s: float = 15.0
    #: Where the dashboard and the read commands send their queries (a streaming standby);
    #: writers, the rollup, prune and migrations always use ``database_url``.
    read_database_url: str | None = None

    @property
    def reads_url(self) -> str:
        """The URL for read-only work: the read replica's when one is set."""
        return self.read_database_url or self.database_url


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment (``STRATLOG_DATABASE_URL``, ``STRATLOG_POOL_SIZE``...)."""
    env = os.environ if environ is None else environ
    return Settings(
        database_url=env.get("STRATLOG_DATABASE_URL") or DEFAULT_DATABASE_URL,
        pool_size=int(env.get("STRATLOG_POOL_SIZE") or 5),
        query_timeout_s=float(env.get("STRATLOG_QUERY_TIMEOUT_S") or 15.0),
        read_database_url=env.get("STRATLOG_READ_DATABASE_URL") or None,
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe for logs and error messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show nothing of it that could be a secret
        return "<unparsable database URL>"
