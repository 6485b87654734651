"""One family for the errors a person should read, and the one way every edge
(CLI, js_api, menu callbacks, hotkey, plugin calls, worker threads) turns any
exception into one line.

An ``RmmError``'s message is written for the person: one line that says what
went wrong and, where there is one, what to do. Anything else reaching an edge
is a bug: the person reads "internal error: ..., see the log" and the traceback
goes to the log.
"""

from __future__ import annotations

import errno
import logging


class RmmError(Exception):
    """A problem the person using the app can read and act on; the message is one line."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0].strip().splitlines()[0] if exc.args[0].strip() else "KeyError"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def is_for_person(exc: BaseException) -> bool:
    """Whether the message itself is what the person should read: our own errors
    and the operating system's (a missing file, a full disk, no permission)."""
    return isinstance(exc, RmmError) or (isinstance(exc, OSError) and bool(exc.strerror))


def describe(exc: BaseException) -> str:
    """The one line an edge shows for ``exc``."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full; nothing was lost, free some space and try again"
    if isinstance(exc, RmmError):
        return one_line(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"internal error: {one_line(exc)}, see the log"


def report(log: logging.Logger, what: str, exc: BaseException) -> str:
    """Log ``exc`` once as an edge should (a person's error as one line, anything
    else with its traceback) and return the line to show."""
    line = describe(exc)
    if is_for_person(exc):
        log.warning("%s: %s", what, line, exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
    else:
        log.error("%s: %s", what, line, exc_info=exc)
    return line
