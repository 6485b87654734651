"""state.json in the data home: what the app did once and must remember (the
first run's welcome, the popup's size and place). Locked from read to write and
written atomically, as models/starter.py's own key is."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rmm_tray.home.atomic import atomic_write_text, locked

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


def read(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s)", root / STATE_FILE, exc)
        return {}
    return data if isinstance(data, dict) else {}


def get(root: Path, key: str, default: Any = None) -> Any:
    return read(root).get(key, default)


def put(root: Path, key: str, value: Any) -> None:
    """Set one key, keeping the others (another process may own them)."""
    path = root / STATE_FILE
    with locked(path):
        data = read(root)
        if (path.exists() and not data):  # unreadable: never overwrite what we could not read
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return
        data[key] = value
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
