"""Opening what the data folder holds without trusting it: only a regular file
(a link to one counts) is opened. A FIFO would wait for a writer forever and a
device may do anything, so the type is checked before opening and again on what
was opened (O_NONBLOCK: a FIFO swapped in meanwhile does not block the open)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from rmm_tray.errors import RmmError


class NotRegularFile(RmmError, OSError):
    """A directory, FIFO, device or socket where a file was expected; never opened."""

    def __str__(self) -> str:  # OSError's own would add the errno
        return str(self.args[0]) if self.args else "not a regular file"


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message: "a directory", "a FIFO"..."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for binary reading only if it is a regular file;
    ``NotRegularFile`` ("NAME: not a regular file (a FIFO)") if it is not, and the
    system's OSError otherwise (a missing file included)."""
    name = Path(path).name
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"{name}: not a regular file ({file_kind(mode)})")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{name}: not a regular file ({file_kind(mode)})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
