"""Engine and session factory from one URL, and schema setup (Alembic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from stratlog.config import load_settings
from stratlog.dialect import configure_engine, is_sqlite_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def dumps_json(value: Any) -> str:
    """JSON for the payload columns: orjson (several times faster than ``json`` on bulk loads)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


#: PostgreSQL settings of every stratlog connection (see :func:`make_engine`).
CONNECTION_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def make_engine(
    url: str | URL | None = None, *, pool_size: int | None = None, **kw: Any
) -> AsyncEngine:
    """An ``AsyncEngine`` for the URL (default: settings); SQLite gets WAL and a busy timeout."""
    settings = load_settings()
    url = url or settings.database_url
    options: dict[str, Any] = {"pool_pre_ping": True, "json_serializer": dumps_json}
    if not is_sqlite_url(url if isinstance(url, str) else url.drivername):
        options["pool_size"] = pool_size or settings.pool_size
        options["max_overflow"] = 0
        options["pool_timeout"] = settings.query_timeout_s
        # asyncpg prepares every statement, and PostgreSQL switches a prepared statement to a
        # generic plan after five runs when that plan looks no dearer. A panel's statement is
        # run for many windows; planned without the window's bounds it can pick a scan of the
        # whole table (the Versions read went from 30 ms to 1-3 s on 10M rows). Planning each
        # run costs ~1 ms. Settings given by the caller win.
        given = dict(kw.pop("connect_args", {}))
        server = {**CONNECTION_SETTINGS, **given.get("server_settings", {})}
        options["connect_args"] = {**given, "server_settings": server}
    options.update(kw)
    engine = create_async_engine(url, **options)
    configure_engine(engine)
    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory the repositories take: one ``AsyncSession`` per call."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations, without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade_on(connection: Connection, revision: str, partitioned: bool) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    cfg.attributes["partitioned"] = partitioned
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head", *, partitioned: bool = True) -> None:
    """Bring the schema to ``revision`` with Alembic, on the engine's own connection.

    On PostgreSQL a new (empty) audit table is made a partitioned one by revision 0008 unless
    ``partitioned`` is false (``stratlog.partitions``)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_on, revision, partitioned)


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL, or ``None`` for other backends and in-memory databases."""
    if not is_sqlite_url(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def existing_file_url(url: str) -> str | URL:
    """The URL opening its SQLite file only if it exists (``mode=rw``: never creates one).

    For readers such as the dashboard: a moved or mistyped file must be reported as missing,
    not replaced by a new, empty database. Other URLs are returned unchanged.
    """
    path = sqlite_path(url)
    if path is None:
        return url
    parsed = make_url(url)
    query = {**parsed.query, "mode": "rw", "uri": "true"}
    # A file: URI, percent-encoded: a '?' or '#' in the name must not end the path. Kept as a
    # URL object: rendered to text, the URL's own quoting would garble the URI.
    return parsed.set(database=path.absolute().as_uri(), query=query)
