"""Menu entries that plugins add to the tray through ``tray_menu_items``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MenuItem:
    text: str
    #: Called with the app object when chosen, on a worker thread, never the UI thread.
    action: Callable[[Any], None]
    enabled: bool = True
