"""The popup's size and place, remembered per screen across restarts (GTK).

Kept in state.json under ``popup``: one rectangle per monitor, keyed by the
monitor's own geometry, so a laptop that meets a second screen finds the popup
where it was on each. A screen never seen before gets the centred default.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from rmm_tray.home import state

log = logging.getLogger(__name__)

KEY = "popup"
_home: Path | None = None


def configure(home: Path) -> None:
    global _home
    _home = home


def gtk_parts(window: Any) -> tuple[Any, Any]:
    """The Gtk.Window of a pywebview window and its web view widget (None, None
    off GTK). pywebview 5 and later set ``native`` to the Gtk.Window itself;
    earlier ones to an object holding ``window`` and ``webview``."""
    native = getattr(window, "native", None)
    if native is not None and hasattr(native, "get_position"):
        return native, _find_webview(native)
    return getattr(native, "window", None), getattr(native, "webview", None)


def _find_webview(widget: Any) -> Any:
    if hasattr(widget, "get_uri") and hasattr(widget, "run_javascript"):
        return widget
    children = widget.get_children() if hasattr(widget, "get_children") else []
    for child in children:
        found = _find_webview(child)
        if found is not None:
            return found
    return None


def monitor_key(monitor: Any) -> str:
    geo = monitor.get_geometry()
    return f"{geo.width}x{geo.height}+{geo.x}+{geo.y}"


def saved_for(monitor: Any) -> dict[str, int] | None:
    if _home is None or monitor is None:
        return None
    saved = state.get(_home, KEY, {})
    rect = saved.get(monitor_key(monitor)) if isinstance(saved, dict) else None
    if not (isinstance(rect, dict) and all(isinstance(rect.get(k), int) for k in "xywh")):
        return None
    return rect


def place(gtk_window: Any, monitor: Any) -> bool:
    """Put the window where it was on this monitor; False when it has no place
    here yet (the caller centres it). On the GTK main thread."""
    rect = saved_for(monitor)
    if rect is None:
        return False
    geo = monitor.get_geometry()
    w, h = max(rect["w"], 300), max(rect["h"], 300)
    # Within the monitor still, whatever changed (a smaller resolution, a panel).
    x = min(max(rect["x"], geo.x), geo.x + max(geo.width - w, 0))
    y = min(max(rect["y"], geo.y), geo.y + max(geo.height - h, 0))
    gtk_window.resize(w, h)
    gtk_window.move(x, y)
    return True


def remember(gtk_window: Any, timeout: float = 1.0) -> None:
    """Record where the (shown) window is now; from any thread."""
    if _home is None or gtk_window is None:
        return
    from gi.repository import GLib

    found: list[tuple[str, dict[str, int]]] = []
    done = threading.Event()

    def read() -> bool:
        try:
            if gtk_window.get_visible():
                gdk_window = gtk_window.get_window()
                display = gtk_window.get_display()
                monitor = display.get_monitor_at_window(gdk_window) if gdk_window else None
                if monitor is not None:
                    x, y = gtk_window.get_position()
                    w, h = gtk_window.get_size()
                    found.append((monitor_key(monitor), {"x": x, "y": y, "w": w, "h": h}))
        except Exception:  # the GTK main loop is an edge
            log.exception("reading the popup's geometry failed")
        finally:
            done.set()
        return False

    if GLib.MainContext.default().is_owner():  # on the GTK thread already (closing the window)
        read()
    else:
        GLib.idle_add(read)
    ok = done.wait(timeout)
    if not ok or not found:
        return
    key, rect = found[0]
    saved = state.get(_home, KEY, {})
    saved = dict(saved) if isinstance(saved, dict) else {}
    if saved.get(key) != rect:
        saved[key] = rect
        state.put(_home, KEY, saved)
