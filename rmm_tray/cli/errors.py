"""The CLI's edge: one line on stderr for any error, the traceback of an
unexpected one in the log file."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from rmm_tray.errors import describe, is_for_person

LOG_NAME = "rmm-tray.log"


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
    from datetime import datetime

    from rmm_tray.home.paths import DataHome

    path = DataHome.from_env().logs / LOG_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"{datetime.now().isoformat(timespec='seconds')} ERROR rmm_tray.cli: "
                     f"{type(exc).__name__}: {exc}\n")
            fh.writelines(traceback.format_exception(exc))
    except OSError:
        return None
    return str(path)
