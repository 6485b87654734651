"""The models/ folder: what is there, and finding one by a name a person types."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmm_tray.gguf_meta import GGUFError, GGUFInfo, read_gguf

# Files still being written by a download or an import.
PARTIAL_SUFFIXES = (".part", ".incomplete", ".tmp")


class ModelNotFound(LookupError):
    """No model, or more than one, matches; the message is one line."""


@dataclass
class LocalModel:
    name: str  # path relative to models/, with forward slashes
    path: Path
    size: int
    info: GGUFInfo | None = None
    error: str | None = None
    linked: bool = False

    def to_dict(self) -> dict[str, Any]:
        info = self.info
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "linked": self.linked,
            "architecture": info.architecture if info else None,
            "quantization": info.quantization if info else None,
            "parameters": info.size_label if info else None,
            "context_length": info.context_length if info else None,
            "error": self.error,
        }


def _gguf_files(models_dir: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(models_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(".gguf") and not name.startswith("."):
                found.append(Path(root) / name)
    return found


def list_models(models_dir: Path, *, read_metadata: bool = True) -> list[LocalModel]:
    models = []
    for path in _gguf_files(models_dir):
        try:
            size = path.stat().st_size
        except OSError:  # a dangling link: the imported file was moved away
            models.append(LocalModel(_rel(path, models_dir), path, 0, error="file is missing"))
            continue
        model = LocalModel(_rel(path, models_dir), path, size, linked=path.is_symlink())
        if read_metadata:
            try:
                model.info = read_gguf(path, summary=True)
            except GGUFError as exc:
                model.error = str(exc)
        models.append(model)
    return models


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def resolve_model(ref: str, models_dir: Path) -> Path:
    """A path, a name in models/, or a unique case-insensitive part of one."""
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return candidate.absolute()
    files = _gguf_files(models_dir) if models_dir.is_dir() else []
    names = {_rel(p, models_dir): p for p in files}
    for name, path in names.items():
        if ref in (name, path.name, path.stem):
            return path
    needle = ref.lower()
    matches = [p for n, p in names.items() if needle in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        if not names:
            raise ModelNotFound(f"no model matches '{ref}' (models/ is empty; see 'rmm-tray models import')")
        raise ModelNotFound(f"no model matches '{ref}'; see 'rmm-tray models list'")
    shown = ", ".join(sorted(_rel(p, models_dir) for p in matches)[:5])
    raise ModelNotFound(f"'{ref}' matches {len(matches)} models ({shown}); be more specific")


def remove_model(ref: str, models_dir: Path) -> Path:
    """Delete a model from models/. A linked import loses only its link."""
    path = resolve_model(ref, models_dir)
    try:
        path.relative_to(models_dir)
    except ValueError:
        raise ModelNotFound(f"'{ref}' is not in models/; nothing removed") from None
    path.unlink()
    return path


def default_model(models_dir: Path, configured: str) -> Path:
    if configured:
        return resolve_model(configured, models_dir)
    files = _gguf_files(models_dir) if models_dir.is_dir() else []
    if not files:
        raise ModelNotFound("no models yet: 'rmm-tray models import PATH' adds a GGUF file")
    return files[0]
