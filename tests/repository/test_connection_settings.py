"""Every stratlog connection to PostgreSQL plans each run of a prepared statement afresh."""

from __future__ import annotations

from sqlalchemy import text

from stratlog.db import CONNECTION_SETTINGS, make_engine
from tests.pg import PostgresServer


async def test_custom_plans_on_every_connection(postgres_server: PostgresServer) -> None:
    database_url = postgres_server.url
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
        assert mode == CONNECTION_SETTINGS["plan_cache_mode"] == "force_custom_plan"
    finally:
        await engine.dispose()
    # A caller's own server settings are kept beside it, and win where they overlap.
    given = make_engine(
        database_url,
        connect_args={"server_settings": {"application_name": "probe", "plan_cache_mode": "auto"}},
    )
    try:
        async with given.connect() as conn:
            name = (await conn.execute(text("SHOW application_name"))).scalar_one()
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
        assert (name, mode) == ("probe", "auto")
    finally:
        await given.dispose()
