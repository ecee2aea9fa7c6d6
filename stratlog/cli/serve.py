"""``stratlog serve``: several dashboard processes behind nginx (see :mod:`stratlog.serve`)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from stratlog import serve as layout
from stratlog.cli.errors import CommandError, UsageError
from stratlog.config import redact_url


def _say(line: str) -> None:
    print(line, flush=True)


async def serve(args: argparse.Namespace, url: str) -> int:
    """Write the nginx configuration (``--write-config``), or run the whole layout."""
    try:
        plan = layout.Layout(
            workers=args.workers,
            listen=args.listen,
            port=args.port,
            first_worker_port=args.worker_port,
            connection_budget=args.connection_budget,
        )
    except layout.ServeError as exc:
        raise UsageError(str(exc)) from None
    if args.write_config is not None:
        config = layout.site_config(plan)
        if str(args.write_config) == "-":
            sys.stdout.write(config)
        else:
            try:
                args.write_config.write_text(config)
            except OSError as exc:
                raise CommandError(f"cannot write {args.write_config}: {exc}") from None
            _say(f"wrote the nginx configuration for {plan.workers} processes to "
                 f"{args.write_config}")  # fmt: skip
        return 0
    try:
        nginx = layout.find_nginx(args.nginx)
    except layout.ServeError as exc:
        raise CommandError(str(exc)) from None
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="stratlog-serve-"))
    _say(f"stratlog: starting {plan.workers} dashboard processes on {redact_url(url)}...")
    try:
        return await layout.serve(plan, url, run_dir.resolve(), nginx, say=_say)
    except layout.ServeError as exc:
        raise CommandError(str(exc)) from None
