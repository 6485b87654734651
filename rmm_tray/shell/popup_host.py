"""The core's side of the popup: starts the popup process, restarts it when it
dies (the engine and its model are untouched), and talks to it."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rmm_tray.desktop import ipc

log = logging.getLogger(__name__)

RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 30.0
QUICK_DEATH_S = 10.0


class PopupHost:
    def __init__(self, home: Path) -> None:
        self.home = home
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._pending_show = False
        self._started = False
        self.on_attach: Any = None
        self.starts = 0

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start (and keep) the popup process; a second call does nothing."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._keep_alive, name="rmm-popup-host", daemon=True).start()

    def _keep_alive(self) -> None:
        delay = RESTART_DELAY_S
        while not self._stopping:
            self.starts += 1
            started = time.monotonic()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "rmm_tray.shell.popup_process", str(self.home)])
            code = self._proc.wait()
            with self._lock:
                self._conn = None
            if self._stopping:
                return
            # A popup that keeps dying (no display any more, a broken WebKit) is
            # restarted ever more slowly instead of in a tight loop.
            quick = time.monotonic() - started < QUICK_DEATH_S
            delay = min(delay * 2, MAX_RESTART_DELAY_S) if quick else RESTART_DELAY_S
            log.warning("the popup process ended (code %s); starting a new one in %.1f s",
                        code, delay)
            time.sleep(delay)

    def attach(self, conn: Connection) -> None:
        with self._lock:
            self._conn = conn
            show, self._pending_show = self._pending_show, False
        if self.on_attach is not None:
            self.on_attach()
        if show:
            self.send({"event": "show"})

    def send(self, message: dict[str, Any]) -> bool:
        with self._lock:
            conn = self._conn
            if conn is None:
                return False
            try:
                ipc.send_json(conn, message)
                return True
            except ipc.BadMessage as exc:  # too large or not JSON: this message only
                log.error("not sent to the popup: %s", exc)
                return False
            except OSError as exc:
                # Gone, or stalled past the limit (a stopped popup): a half-written
                # message leaves the link out of step, so end it; the popup process
                # sees the end, quits, and a new one starts.
                log.warning("the link to the popup failed (%s); closing it",
                            str(exc) or type(exc).__name__)
                self._conn = None
                ipc.hang_up(conn)
                return False

    def page(self, data: dict[str, Any]) -> None:
        self.send({"event": "page", "data": data})

    def command(self, cmd: str) -> None:
        """show / hide / toggle. A show asked while the popup is (re)starting
        happens as soon as it is up."""
        if not self.send({"event": cmd}) and cmd in ("show", "toggle"):
            self._pending_show = True

    def stop(self) -> None:
        self._stopping = True
        self.send({"event": "quit"})
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
