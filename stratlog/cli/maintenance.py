"""Maintenance commands: ``db upgrade``, ``rollup`` and ``prune`` (they change the database)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tqdm import tqdm

from stratlog import partitions as parts
from stratlog.cli.database import current_schema_engine, engine_for
from stratlog.cli.errors import CommandError, UsageError
from stratlog.cli.render import cell, make_console, table, utc
from stratlog.config import redact_url
from stratlog.db import upgrade
from stratlog.rollups import RollupJob, RollupRun, retention, verify


async def db_upgrade(args: argparse.Namespace, url: str) -> int:
    """``stratlog db upgrade``: migrate to the newest revision, then catch the rollups up.

    A revision that rebuilds the rollups (0005) sets the watermark back to 0; the catch-up that
    follows refolds every row with a progress bar, one committed batch at a time, so an
    interrupted rebuild resumes where it stopped when this (or ``stratlog rollup``) runs again.
    """
    engine = engine_for(url)
    try:
        await upgrade(engine, partitioned=args.partitioned)
        print(f"schema is at the newest revision: {redact_url(url)}", flush=True)
        try:  # the coming days, as the rollup loop makes them
            await parts.ensure_ahead(engine)
        except parts.PartitionsBusy as exc:
            print(f"partitions: {exc}")
        await _say_partitioning(engine)
        job = RollupJob(engine)
        if await job.behind() > 0:
            total, mark = await _catch_up(job, quiet=args.quiet, what="rolling up")
            if await job.behind() > 0:
                print(
                    f"rolled up {total:,} rows; the rest was postponed (a write transaction on "
                    "the audit table stayed open): run `stratlog rollup` to finish"
                )
            else:
                print(f"rolled up {total:,} rows; watermark at id {mark:,}")
    finally:
        await engine.dispose()
    return 0


async def _say_partitioning(engine: AsyncEngine) -> None:
    """PostgreSQL: whether the audit table is partitioned, and what to do if it is not."""
    async with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            return
        if await parts.is_partitioned(conn):
            found = await parts.partitions(conn)
            days = [p for p in found if not p.is_default]
            last = f", the last for {utc(days[-1].start)[:10]}" if days and days[-1].start else ""
            print(f"audit table partitioned by day: {len(days):,} day partitions{last}")
        else:
            print(
                "audit table not partitioned (it held rows, or --no-partitions): "
                "`stratlog partitions convert` converts it (docs/scaling.md)"
            )


async def _catch_up(job: RollupJob, *, quiet: bool, what: str) -> tuple[int, int]:
    """Run the job until it has caught up, with a progress bar; (rows folded, watermark)."""
    with tqdm(unit="rows", desc=what, disable=quiet or None) as bar:
        last: list[RollupRun] = []

        def progress(run: RollupRun) -> None:
            last.append(run)
            bar.total = bar.n + run.rows + max(run.behind, 0)
            bar.update(run.rows)

        total = await job.catch_up(progress)
    return total, max(last[-1].watermark if last else 0, 0)


async def rollup(args: argparse.Namespace, url: str) -> int:
    """``stratlog rollup``: catch the rollups up (with a progress bar), then ``--watch``."""
    if args.verify:
        return await _verify(args, url)
    if args.repair or args.since:
        raise UsageError("--repair and --since go with --verify")
    engine = await current_schema_engine(url)
    try:
        job = RollupJob(engine, args.batch)
        total, mark = await _catch_up(job, quiet=args.quiet, what="")
        print(f"rolled up {total:,} rows; watermark at id {mark:,}")
        if args.watch:
            print(f"watching: catching up every {args.watch:g} s (Ctrl-C to stop)", flush=True)
            await job.run_forever(args.watch)
    finally:
        await engine.dispose()
    return 0


async def prune(args: argparse.Namespace, url: str) -> int:
    """``stratlog prune``: delete runs before a UTC midnight in batches (or count, dry run)."""
    engine = await current_schema_engine(url)
    cutoff = retention.day_cutoff(args.older_than)
    try:
        pending = await retention.count_older(engine, cutoff)
        if args.dry_run:
            print(f"would delete {pending:,} runs created before {utc(cutoff)} UTC")
            return 0
        with tqdm(total=pending, unit="rows", disable=args.quiet or None) as bar:
            result = await retention.prune(
                engine, cutoff, batch_rows=args.batch, progress=bar.update
            )
    finally:
        await engine.dispose()
    dropped = f" ({result.partitions:,} day partitions dropped)" if result.partitions else ""
    print(
        f"deleted {result.rows:,} runs created before {utc(result.cutoff)} UTC{dropped} and "
        f"{result.rollupRows:,} rollup rows in {result.seconds:.1f} s"
    )
    return 0


async def _verify(args: argparse.Namespace, url: str) -> int:
    """``stratlog rollup --verify [--repair]``: 0 when the rollups match the raw rows, else 1."""
    engine = await current_schema_engine(url)
    try:
        found = await verify.verify(engine, args.since)
        _print_verification(found)
        if not found.differences or not args.repair:
            return 1 if found.differences else 0
        rebuilt = await verify.repair(engine, found.days)
        again = await verify.verify(engine, args.since)
        print(f"rebuilt {rebuilt:,} strategy-days from the raw rows")
        _print_verification(again)
        return 1 if again.differences else 0
    finally:
        await engine.dispose()


def _print_verification(found: verify.Verification) -> None:
    where = f"rows up to id {found.watermark:,}, {found.checked:,} strategy-days"
    if not found.differences:
        print(f"rollups match the raw rows ({where})")
        return
    console = make_console()
    rows = [
        [cell(d.strategyId), cell(utc(d.day)[:10]), cell(d.table), cell(d.figure),
         cell(_value(d.raw)), cell(_value(d.rollup))]
        for d in found.differences
    ]  # fmt: skip
    headers = ["strategy", "day (UTC)", "table", "figure", "raw rows", "rollups"]
    console.print(table(headers, rows, right=(4, 5)))
    print(
        f"{len(found.days):,} strategy-days differ ({where}); "
        "`stratlog rollup --verify --repair` rebuilds them"
    )


def _value(value: object) -> object:
    """Sums to ten significant digits (enough to see a difference, not float noise)."""
    return f"{value:,.10g}" if isinstance(value, float) else value


#: ``partitions create`` makes at most this many days at once (a typo in a year is not 9,000).
MAX_CREATE_DAYS = 1_000


async def partitions(args: argparse.Namespace, url: str) -> int:
    """``stratlog partitions list|create|convert`` (PostgreSQL)."""
    if not 0 <= args.ahead < MAX_CREATE_DAYS:
        raise UsageError(f"--ahead must be 0 to {MAX_CREATE_DAYS - 1:,} days")
    if (args.first_day is None) != (args.last_day is None):
        raise UsageError("--from and --to go together")
    if args.first_day and args.last_day and args.first_day > args.last_day:
        raise UsageError("--from must not be after --to")
    engine = await current_schema_engine(url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name != "postgresql":
                raise UsageError("partitions are for PostgreSQL; an SQLite file has none")
            partitioned = await parts.is_partitioned(conn)
        if args.action == "convert":
            return await _convert(engine, args)
        if not partitioned:
            raise UsageError(
                "the audit table is not partitioned: `stratlog partitions convert` converts it"
            )
        if args.action == "create":
            today = datetime.now(UTC).date()
            first = args.first_day or today
            last = args.last_day or today + timedelta(days=args.ahead)
            if (last - first).days >= MAX_CREATE_DAYS:
                raise UsageError(f"a range of at most {MAX_CREATE_DAYS:,} days at once")
            try:
                made = await parts.ensure(engine, first, last)
            except parts.PartitionsBusy as exc:
                raise CommandError(str(exc)) from exc
            print(f"created {len(made):,} day partitions ({first} to {last}, UTC)")
            for name in made:
                print(f"  {name}")
            return 0
        return await _list(engine, args)
    finally:
        await engine.dispose()


async def _list(engine: AsyncEngine, args: argparse.Namespace) -> int:
    found = await parts.list_partitions(engine)
    async with engine.connect() as conn:
        waiting = int(
            await conn.scalar(text(f"SELECT count(*) FROM {parts.DEFAULT_PARTITION}")) or 0  # noqa: S608
        )
    rows = [
        {
            "name": p.name,
            "from": utc(p.start) if p.start else None,
            "to": utc(p.end) if p.end else None,
            "rows": waiting if p.is_default else p.estimate,
        }
        for p in found
    ]
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    console = make_console()
    body = [
        [cell(r["name"]), cell(r["from"] or "default"), cell(r["to"] or ""),
         cell("not analyzed" if r["rows"] is None else f"{r['rows']:,}")]
        for r in rows
    ]  # fmt: skip
    console.print(
        table(["partition", "from (UTC)", "to (UTC)", "rows (estimate)"], body, right=(3,))
    )
    print(f"{len(rows) - 1:,} day partitions; {waiting:,} rows in the default partition (counted)")
    return 0


async def _convert(engine: AsyncEngine, args: argparse.Namespace) -> int:
    with tqdm(unit="rows", desc="copying", disable=args.quiet or None) as bar:

        def progress(copied: int, total: int) -> None:
            bar.total = total
            bar.update(copied - bar.n)

        try:
            done = await parts.convert(engine, batch_rows=args.batch, progress=progress)
        except parts.PartitionsBusy as exc:
            raise CommandError(
                "the copy could not get the table's brief lock for a minute (a long write "
                "transaction?): run `stratlog partitions convert` again to go on"
            ) from exc
    if done.already:
        print("the audit table is partitioned already")
        return 0
    if not done.swapped:
        print(
            f"copied {done.copied:,} rows; the swap did not get its lock in time (a long "
            "transaction on the audit table): run `stratlog partitions convert` again to finish"
        )
        return 1
    print(
        f"converted: {done.copied:,} rows copied into {done.partitions:,} day partitions in "
        f"{done.seconds:.1f} s; the old table is {parts.UNPARTITIONED} (drop it when satisfied)"
    )
    return 0
