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
    if is_wayland():
        log.info("Wayland session: no global hotkey; bind 'rmm-tray toggle' as a desktop shortcut")
        return None
    from pynput import keyboard

    def fire() -> None:
        try:
            callback()
        except Exception as exc:  # the listener thread is an edge: never let it die
            report(log, "hotkey action", exc)

    try:
        listener = keyboard.GlobalHotKeys({combo: fire})
    except ValueError as exc:
        log.error("hotkey %r is not valid: %s", combo, exc)
        return None
    listener.daemon = True
    listener.start()
    return listener
