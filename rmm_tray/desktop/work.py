"""The one way the desktop side starts background work: a bounded pool whose
tasks report their failure once and never take a thread down with them.

Popup calls, menu callbacks and hotkey presses only enqueue here; long-lived
loops (the IPC server, the popup keeper, the download publisher) are services
with threads of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rmm_tray.errors import report

log = logging.getLogger(__name__)

#: Enough for a reply, a model load, a delete and a few list refreshes at once.
WORKERS = 8


class Background:
    def __init__(self, workers: int = WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rmm-work")

    def run(self, name: str, fn: Callable[..., Any], *args: Any,
            on_error: Callable[[str], None] | None = None) -> "Future[Any]":
        """Run ``fn(*args)`` on a worker. A failure is logged once (see
        ``errors.report``) and its one line handed to ``on_error``."""

        def task() -> Any:
            try:
                return fn(*args)
            except Exception as exc:  # a worker is an edge
                line = report(log, name, exc)
                if on_error is not None:
                    try:
                        on_error(line)
                    except Exception:
                        log.exception("reporting the failure of %s failed", name)
                return None

        return self._pool.submit(task)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
