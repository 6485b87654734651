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
from collections.abc import Iterable


class RmmError(Exception):
    """A problem the person using the app can read and act on; the message is one line."""


def escaped(text: str) -> str:
    """``text`` with its control characters (newlines, tabs, terminal escapes)
    written as Python writes them in a repr (``\\n``, ``\\x1b``): what a line
    shown to a person may hold of a value it quotes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def one_line(exc: BaseException, values: Iterable[str] = ()) -> str:
    """The first line of an exception's message (its type's name when it has none).
    ``values`` are texts the person gave (a command line's arguments): where the
    message quotes one holding a newline, it shows escaped rather than cut short."""
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        message = exc.args[0]
        if not message.strip():
            return "KeyError"
    else:
        message = str(exc)
    for value in values:
        if value and not value.isprintable() and value in message:
            message = message.replace(value, escaped(value))
    lines = message.strip().splitlines()
    return escaped(lines[0]) if lines else type(exc).__name__


def is_for_person(exc: BaseException) -> bool:
    """Whether the message itself is what the person should read: our own errors
    and the operating system's (a missing file, a full disk, no permission)."""
    return isinstance(exc, RmmError) or (isinstance(exc, OSError) and bool(exc.strerror))


def describe(exc: BaseException, values: Iterable[str] = ()) -> str:
    """The one line an edge shows for ``exc`` (``values``: see ``one_line``)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full; nothing was lost, free some space and try again"
    if isinstance(exc, RmmError):
        return one_line(exc, values)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {escaped(str(exc.filename))}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"internal error: {one_line(exc, values)}, see the log"


def report(log: logging.Logger, what: str, exc: BaseException) -> str:
    """Log ``exc`` once as an edge should (a person's error as one line, anything
    else with its traceback) and return the line to show."""
    line = describe(exc)
    if is_for_person(exc):
        log.warning("%s: %s", what, line, exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
    else:
        log.error("%s: %s", what, line, exc_info=exc)
    return line
