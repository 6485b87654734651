"""The global hotkey (pynput; X11, Windows, macOS). Wayland does not let an app
see other apps' keys: there the desktop binds `rmm-tray toggle` instead."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from rmm_tray.errors import report

log = logging.getLogger(__name__)


def is_wayland() -> bool:
    return sys.platform.startswith("linux") and (
        bool(os.environ.get("WAYLAND_DISPLAY")) or os.environ.get("XDG_SESSION_TYPE") == "wayland"
    )


def start(combo: str, callback: Callable[[], None]) -> Any | None:
    return start_many({combo: callback})


def start_many(bindings: dict[str, Callable[[], None]]) -> Any | None:
    """One listener for several hotkeys (the main one, each prompt's)."""
    if not bindings:
        return None
    if is_wayland():
        log.info("Wayland session: no global hotkey; bind 'rmm-tray toggle' as a desktop shortcut")
        return None
    from pynput import keyboard

    def guarded(callback: Callable[[], None]) -> Callable[[], None]:
        def fire() -> None:
            try:
                callback()
            except Exception as exc:  # the listener thread is an edge: never let it die
                report(log, "hotkey action", exc)
        return fire

    try:
        listener = keyboard.GlobalHotKeys({c: guarded(cb) for c, cb in bindings.items()})
    except ValueError as exc:
        log.error("hotkey %r is not valid: %s", ", ".join(bindings), exc)
        return None
    listener.daemon = True
    listener.start()
    return listener
