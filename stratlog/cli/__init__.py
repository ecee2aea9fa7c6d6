"""The ``stratlog`` command line: schema, demo data and post-mortem helpers (see docs/cli.md).

:mod:`.parser` builds the argument tree, :mod:`.render` writes tables and JSON, :mod:`.database`
opens an existing database, and one module per command group holds the handlers
(:mod:`.reading`, :mod:`.summary`, :mod:`.snapshot`, :mod:`.maintenance`, :mod:`.demo`); each
handler is ``async def (args, url) -> int``. SQLAlchemy and Alembic load lazily, so ``--help``
and bad arguments answer fast.
"""

from stratlog.cli.main import main

__all__ = ["main"]
