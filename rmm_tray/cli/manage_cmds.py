"""`rmm-tray models info|default|set`: local model details and per-model settings."""

from __future__ import annotations

from typing import Any


def add_actions(msub: Any) -> None:
    pass
