"""Imports GGUF files from a path on this machine: a file, or every GGUF in a folder.

Importing links by default (no disk wasted); ``copy=True`` copies instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rmm_tray import ModelSource, Progress, SourceError, hookimpl, link_or_copy

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def _is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


class LocalFolderSource(ModelSource):
    name = "local-folder"
    description = "GGUF files already on this computer (a file or a folder)"

    def handles(self, ref: str) -> bool:
        return Path(ref).expanduser().exists()

    def fetch(
        self, ref: str, models_dir: Path, *, copy: bool = False, progress: Progress | None = None
    ) -> list[Path]:
        src = Path(ref).expanduser()
        if src.is_dir():
            files = sorted(p for p in src.rglob("*.gguf") if p.is_file())
            if not files:
                raise SourceError(f"no .gguf files in {src}")
        else:
            files = [src]
        for path in files:
            if not _is_gguf(path):
                raise SourceError(f"{path.name} is not a GGUF file")
        return [link_or_copy(p, models_dir / p.name, copy=copy, progress=progress) for p in files]


@hookimpl
def register_model_sources(register):  # type: ignore[no-untyped-def]
    register(LocalFolderSource())
