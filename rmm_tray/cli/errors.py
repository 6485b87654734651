"""Turns an exception into the one line a person reads."""

from __future__ import annotations

import errno


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full; nothing was lost, free some space and try again"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]  # str(KeyError) adds quotes around the message
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
