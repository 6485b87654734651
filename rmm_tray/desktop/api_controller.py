"""The tray's Local API switch: starts and stops the API on the app's own engine.

No GUI toolkit here. The server's libraries load only when it is turned on,
so a tray that never serves keeps its idle memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rmm_tray.errors import RmmError, describe

if TYPE_CHECKING:
    from rmm_tray.app import App

log = logging.getLogger(__name__)


class LocalApi:
    """``on_change()`` after every start and stop (the menu redraws);
    ``on_error(line)`` when the API cannot start (the tray says why)."""

    def __init__(self, app: "App", *, on_change: Callable[[], None] = lambda: None,
                 on_error: Callable[[str], None] = lambda line: None) -> None:
        self.app = app
        self.on_change = on_change
        self.on_error = on_error
        self.error: str | None = None
        self._thread: Any = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.running

    @property
    def address(self) -> str | None:
        return self._thread.settings.url if self.running else None

    def label(self) -> str:
        """The menu's On entry: the address it serves (or would)."""
        if self.running:
            return f"On — {self.address}"
        try:
            from rmm_tray.server.settings import ServerSettings

            return f"On — {ServerSettings.from_config(self.app.config['server']).url}"
        except (RmmError, KeyError, ValueError):
            return "On"

    def set(self, on: bool) -> str | None:
        """Turn the API on or off; the address it serves, or None. A failure to
        start is one line for the person (``error``, ``on_error``), never raised."""
        with self._lock:
            if on and not self.running:
                self._start()
            elif not on and self._thread is not None:
                self._thread.stop()
                self._thread = None
                self.error = None
        self.on_change()
        return self.address

    def _start(self) -> None:
        try:
            from rmm_tray.server.run import ServerThread
            from rmm_tray.server.settings import ServerSettings

            self._thread = ServerThread(self.app, ServerSettings.from_config(self.app.config["server"]))
        except Exception as exc:  # an edge: the menu's callback must not raise
            self._thread = None
            self.error = f"Local API: {describe(exc)}"
            log.warning("%s", self.error)
            self.on_error(self.error)
        else:
            self.error = None
            log.info("local API at %s", self._thread.settings.url)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
