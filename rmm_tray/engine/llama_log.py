"""Routes llama.cpp's own log into Python logging.

llama-cpp-python's ``verbose=False`` silences llama.cpp by pointing the process's
fds 1 and 2 at /dev/null while a model loads, which also swallows every other
thread's output. We load with ``verbose=True`` and install this callback instead.
The last error lines are kept: they say why a load failed.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading

import llama_cpp

log = logging.getLogger("rmm_tray.llama_cpp")

# ggml_log_level: NONE, DEBUG, INFO, WARN, ERROR, CONT (continues the previous line).
_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING,
           4: logging.ERROR}
_CONT = 5

_lock = threading.Lock()
_pending: list[str] = []
_pending_level = logging.DEBUG
_errors: collections.deque[str] = collections.deque(maxlen=20)


def _flush_line() -> None:
    global _pending
    line = "".join(_pending).rstrip()
    _pending = []
    if not line:
        return
    if _pending_level >= logging.ERROR:
        _errors.append(line)
    # llama.cpp's INFO is chatty (every tensor) and its warnings are about model
    # files a person cannot change; only its errors reach the default log level.
    level = {logging.INFO: logging.DEBUG, logging.WARNING: logging.INFO}.get(_pending_level,
                                                                              _pending_level)
    log.log(level, "%s", line)


@llama_cpp.llama_log_callback
def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    global _pending_level
    try:
        piece = text.decode("utf-8", errors="replace")
        with _lock:
            if level != _CONT:
                if _pending:
                    _flush_line()
                _pending_level = _LEVELS.get(level, logging.DEBUG)
            _pending.append(piece)
            if piece.endswith("\n"):
                _flush_line()
    except Exception:  # an exception must never cross back into C
        pass


def install() -> None:
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def take_errors() -> list[str]:
    with _lock:
        if _pending:
            _flush_line()
        lines = list(_errors)
        _errors.clear()
    return lines
