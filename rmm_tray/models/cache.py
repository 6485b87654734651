"""Remembered GGUF headers, so listing many models opens only the files that changed.

One JSON file, keyed by a model's path, valid while the file's size and
modification time (ns) are what they were. It is only a cache: a stale entry is
read again, and a missing, corrupt or foreign file is rebuilt from scratch; an
entry with a field of the wrong type counts as missing (the file is read again).
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

from rmm_tray.home.atomic import atomic_write_text
from rmm_tray.home.files import file_kind
from rmm_tray.models.gguf import GGUFError, GGUFInfo, read_gguf

log = logging.getLogger(__name__)

# 2: the whole header is read (general.file_type comes after the tokenizer) and
# data_end is kept; entries of format 1 lack both, so they are read again.
FORMAT = 2


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
        if not stat.S_ISREG(st.st_mode):  # never open a FIFO or a device (nothing cached)
            return None, f"{path.name}: not a regular file ({file_kind(st.st_mode)})"
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
        entry.update(version=info.version, tensor_count=info.tensor_count, metadata=info.metadata,
                     data_end=info.data_end)
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


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is an int to isinstance; not here


def _restore(path: Path, entry: dict[str, Any]) -> tuple[GGUFInfo | None, str | None] | None:
    """The remembered result, or None (read the file again) when a field is
    missing or of the wrong type: a cache someone edited, or a bug's leftover."""
    if "error" in entry:
        error = entry["error"]
        return (None, error) if isinstance(error, str) and error else None
    meta, version, count = entry.get("metadata"), entry.get("version"), entry.get("tensor_count")
    data_end = entry.get("data_end")
    if not (isinstance(meta, dict) and _is_int(version) and _is_int(count)
            and (data_end is None or _is_int(data_end))):
        return None
    return GGUFInfo(path, version, count, meta, data_end=data_end), None
