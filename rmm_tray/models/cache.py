"""Remembered GGUF headers, so listing many models opens only the files that changed.

One JSON file, keyed by a model's path, valid while the file's size and
modification time (ns) are what they were. It is only a cache: a stale entry is
read again, and a missing, corrupt or foreign file is rebuilt from scratch.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from rmm_tray.home.atomic import atomic_write_text
from rmm_tray.models.gguf import GGUFError, GGUFInfo, read_gguf

log = logging.getLogger(__name__)

FORMAT = 1


def default_cache_file(models_dir: Path) -> Path:
    """``cache/models.json`` in the data home (models/ lives in the data home)."""
    return models_dir.parent / "cache" / "models.json"


class MetadataCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._old = self._load()
        self._new: dict[str, Any] = {}
        self._changed = False

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("model metadata cache ignored (%s); rebuilding it", exc)
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def read(self, path: Path, st: os.stat_result) -> tuple[GGUFInfo | None, str | None]:
        """The summary header of ``path`` (whose ``stat`` the caller already has),
        or the one-line reason it cannot be read."""
        key = str(path)
        entry = self._old.get(key)
        if (isinstance(entry, dict) and entry.get("size") == st.st_size
                and entry.get("mtime_ns") == st.st_mtime_ns):
            restored = _restore(path, entry)
            if restored is not None:
                self._new[key] = entry
                return restored
        self._changed = True
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        try:
            info = read_gguf(path, summary=True)
        except GGUFError as exc:
            entry["error"] = str(exc)
            self._new[key] = entry
            return None, str(exc)
        entry.update(version=info.version, tensor_count=info.tensor_count, metadata=info.metadata)
        self._new[key] = entry
        return info, None

    def save(self) -> None:
        """Write the entries seen since loading (models gone from disk drop out)."""
        if not self._changed and self._new.keys() == self._old.keys():
            return
        text = json.dumps({"format": FORMAT, "entries": self._new}, ensure_ascii=False,
                          separators=(",", ":"))
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:  # a read-only home still lists its models
            log.warning("could not write the model metadata cache %s: %s", self.path, exc)
        self._old, self._changed = self._new, False
        self._new = {}


def _restore(path: Path, entry: dict[str, Any]) -> tuple[GGUFInfo | None, str | None] | None:
    if "error" in entry:
        return None, str(entry["error"])
    meta = entry.get("metadata")
    if not isinstance(meta, dict):
        return None
    try:
        return GGUFInfo(path, int(entry["version"]), int(entry["tensor_count"]), meta), None
    except (KeyError, TypeError, ValueError):
        return None
