"""`rmm-tray models search|pull`: remote catalogues (the Hugging Face Hub plugin)."""

from __future__ import annotations

from typing import Any


def add_actions(msub: Any) -> None:
    pass
