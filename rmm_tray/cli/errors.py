"""The CLI's edge: one line on stderr for any error, the traceback of an
unexpected one in the log file (logs/rmm-tray.log, see home.logs)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from rmm_tray.errors import describe, is_for_person
from rmm_tray.home.logs import LOG_NAME

__all__ = ["LOG_NAME", "report"]


def report(exc: BaseException, argv: Sequence[str] | None = None) -> str:
    """The line to print; an unexpected error's traceback goes to logs/rmm-tray.log.
    An argument (``argv``, default the command line's) with a newline in it, such
    as a pasted id, shows escaped where the message names it: one line still."""
    line = describe(exc, sys.argv[1:] if argv is None else argv)
    if not is_for_person(exc):
        where = _write_traceback(exc)
        line = line.replace("see the log", f"see {where}" if where else "run with --debug")
    return line


def _write_traceback(exc: BaseException) -> str | None:
    from rmm_tray.home import logs

    if logs.current_file() is None:  # main() was not the way in (a test calling report)
        from rmm_tray.home.paths import DataHome

        logs.setup(DataHome.from_env().root, "cli")
    path = logs.to_file_only("rmm_tray.cli", logging.ERROR, f"{type(exc).__name__}: {exc}", exc)
    return str(path) if path else None
