"""Imports GGUF files from a path on this machine: a file, or every GGUF in a folder.

Importing links by default (no disk wasted); ``copy=True`` copies instead.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from rmm_tray import ModelSource, Progress, hookimpl

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def _is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def link_or_copy(src: Path, dest: Path, *, copy: bool, progress: Progress | None = None) -> Path:
    """Put ``src`` at ``dest``: a symlink, else a hard link, else a copy (Windows
    without developer mode cannot symlink)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest.name} is already in models/")
    if not copy:
        for make in (os.symlink, os.link):
            try:
                make(src.resolve(), dest)
                return dest
            except OSError:
                continue
    partial = dest.with_name(dest.name + ".part")
    try:
        shutil.copyfile(src, partial)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if progress:
        size = dest.stat().st_size
        progress(size, size)
    return dest


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
                raise ValueError(f"no .gguf files in {src}")
        else:
            files = [src]
        for path in files:
            if not _is_gguf(path):
                raise ValueError(f"{path.name} is not a GGUF file")
        return [link_or_copy(p, models_dir / p.name, copy=copy, progress=progress) for p in files]


@hookimpl
def register_model_sources(register):  # type: ignore[no-untyped-def]
    register(LocalFolderSource())
