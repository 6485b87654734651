"""logs/rmm-tray.log: one rotating, size-capped file that the core, the popup
process, plugins and the CLI all write to, each line with its time and process.

Warnings and errors by default; ``--debug`` (``RMM_DEBUG=1`` for the processes
the core starts) adds everything. The file is opened on the first line written,
so a command that logs nothing leaves no file behind.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG_NAME = "rmm-tray.log"
#: A few MiB in all: enough for days of warnings, never a disk filler.
MAX_BYTES = 1 << 20
BACKUPS = 3
DEBUG_ENV = "RMM_DEBUG"
FORMAT = "%(asctime)s %(levelname)s [%(process_role)s %(process)d] %(name)s: %(message)s"


def log_file(root: Path) -> Path:
    return root / "logs" / LOG_NAME


def _rotating(path: str, on_error: Any) -> logging.Handler:
    # logging.handlers brings socket, pickle and queue with it: a command that
    # logs nothing (most do) does not pay for them at start-up.
    import logging.handlers

    class Rotating(logging.handlers.RotatingFileHandler):
        def _open(self):  # type: ignore[no-untyped-def]
            Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
            return super()._open()

    handler = Rotating(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    handler.handleError = on_error  # type: ignore[method-assign]
    return handler


class _Handler(logging.Handler):
    """The rotating file, opened with its logs/ folder when the first line comes;
    a failure to write (a full disk, a folder that went away) never reaches the
    code that logged."""

    def __init__(self, path: Path, role: str) -> None:
        super().__init__()
        self.baseFilename = os.path.abspath(path)
        self.role = role
        self._file: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        record.process_role = self.role
        if self._file is None:
            self._file = _rotating(self.baseFilename, self.handleError)
        self._file.setFormatter(self.formatter)
        self._file.emit(record)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints a traceback to stderr for every line it cannot
        # write; one line per process is enough.
        if not getattr(self, "_said", False):
            self._said = True
            print(f"rmm-tray: cannot write {self.baseFilename}", file=sys.stderr)


_handler: _Handler | None = None


def debug_wanted() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def setup(root: Path, role: str, *, debug: bool | None = None) -> Path:
    """Send this process's log to logs/rmm-tray.log under ``root`` (once per
    process; a second call moves it to the new root). ``role`` names the process
    in each line: cli, core, popup. Returns the file's path."""
    global _handler
    debug = debug_wanted() if debug is None else debug
    path = log_file(root)
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler.close()
    _handler = _Handler(path, role)
    _handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    formatter = logging.Formatter(FORMAT)
    formatter.converter = time.localtime
    _handler.setFormatter(formatter)
    root_logger = logging.getLogger()
    root_logger.addHandler(_handler)
    if root_logger.level > _handler.level:
        root_logger.setLevel(_handler.level)
    return path


def set_role(role: str) -> None:
    """The CLI sets up as ``cli``; ``rmm-tray start`` is the core."""
    if _handler is not None:
        _handler.role = role


def to_file_only(logger: str, level: int, message: str, exc: BaseException | None = None) -> Path | None:
    """A line for the file and not the terminal (an unexpected error's traceback,
    after the one-line error was printed). None when there is no log file."""
    if _handler is None:
        return None
    record = logging.getLogger(logger).makeRecord(
        logger, level, "(edge)", 0, message, (), (type(exc), exc, exc.__traceback__) if exc else None)
    _handler.handle(record)
    _handler.flush()
    path = Path(_handler.baseFilename)
    return path if path.exists() else None


def current_file() -> Path | None:
    return Path(_handler.baseFilename) if _handler is not None else None


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of the log (empty when there is none yet)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in deque(fh, maxlen=max(lines, 0))]
    except FileNotFoundError:
        return []


def follow(path: Path, poll_s: float = 0.25) -> Iterator[str]:
    """New lines as they are written, across a rotation (the file is renamed and
    a new one starts). Runs until the caller stops."""
    fh = None
    inode = None
    while True:
        if fh is None:
            try:
                fh = path.open(encoding="utf-8", errors="replace")
                inode = os.fstat(fh.fileno()).st_ino
                fh.seek(0, os.SEEK_END)
            except FileNotFoundError:
                time.sleep(poll_s)
                continue
        line = fh.readline()
        if line:
            yield line.rstrip("\n")
            continue
        try:
            if os.stat(path).st_ino != inode:  # rotated: read the new file from its start
                fh.close()
                fh = path.open(encoding="utf-8", errors="replace")
                inode = os.fstat(fh.fileno()).st_ino
                continue
        except FileNotFoundError:
            pass
        time.sleep(poll_s)
