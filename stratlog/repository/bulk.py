"""Bulk writes of audit rows: bind-processed value tuples, built once, sent in one statement.

The INSERT is compiled once per model and dialect, and the rows are run through each column
type's own bind processor, so the values are exactly those a Core insert would send, without its
per-row bookkeeping (3x faster on the demo generator). The prepared rows are plain data, so they
can be built in another process (the demo generator does) and sent by :func:`insert_prepared`
(``executemany``; ``COPY`` on PostgreSQL).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from stratlog.dialect import bulk_insert
from stratlog.model.strategy_execution_log import StrategyExecutionLog

PreparedBulk = tuple[str, list[str], list[tuple[Any, ...]]]


def prepare_bulk(
    model: type[StrategyExecutionLog], dialect: Dialect, rows: Sequence[Mapping[str, Any]]
) -> PreparedBulk:
    """(positional INSERT text, column names, bind-processed value tuples) for ``rows``.

    Plain data only, so that it can be built in another process (the demo generator does).
    Missing attributes are NULL.
    """
    sql, order, binders = _bulk_statement(model, dialect)
    params = [
        tuple(row.get(key) if p is None else p(row.get(key)) for key, p in binders) for row in rows
    ]
    return sql, list(order), params


def prepare_bulk_columns(
    model: type[StrategyExecutionLog], dialect: Dialect, columns: Mapping[str, Sequence[Any]]
) -> PreparedBulk:
    """:func:`prepare_bulk` for rows given column-wise (attribute name -> one value per row).

    Each column goes through its type's bind processor in one pass, which is about twice as
    fast as row by row. Every column must have the same length; missing attributes are NULL.
    """
    sql, order, binders = _bulk_statement(model, dialect)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns differ in length: {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    bound = []
    for key, p in binders:
        values = columns.get(key)
        if values is None:
            bound.append([None] * count)
        else:
            bound.append(list(values) if p is None else [p(v) for v in values])
    return sql, list(order), list(zip(*bound, strict=True))


@functools.lru_cache(maxsize=16)
def _bulk_statement(
    model: type[StrategyExecutionLog], dialect: Dialect
) -> tuple[str, list[str], list[tuple[str, Any]]]:
    """The positional INSERT text, its column names and (attribute, bind processor) pairs."""
    table = model.__table__
    assert isinstance(table, Table)
    attr_of = {a.columns[0].name: a.key for a in model.__mapper__.column_attrs}
    names = [c.name for c in table.columns if not c.primary_key]
    compiled = insert(table).values({n: bindparam(n) for n in names}).compile(dialect=dialect)
    if not compiled.positional or compiled.positiontup is None:
        raise NotImplementedError(f"bulk insert needs a positional paramstyle ({dialect.name})")
    order = list(compiled.positiontup)
    binders = [
        (attr_of[n], table.c[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in order
    ]
    return compiled.string, order, binders


async def insert_prepared(
    conn: AsyncConnection, model: type[StrategyExecutionLog], prepared: PreparedBulk
) -> int:
    """Send rows prepared for ``model`` on ``conn`` (the caller commits); returns how many."""
    sql, columns, params = prepared
    if params:
        await bulk_insert(conn, model.__table__, sql, columns, params)
    return len(params)
