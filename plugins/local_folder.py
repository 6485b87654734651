"""Imports GGUF files from a path on this machine: a file, or every GGUF in a folder.

Importing links by default (no disk wasted); ``copy=True`` copies instead.

Only regular files (and links to them) are imported. A FIFO, a device or a
socket is never opened: reading a FIFO waits for a writer forever. Named by path,
such a thing is a one-line error; met in a folder, it is skipped with a warning
and the folder's other models are imported.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rmm_tray import ModelSource, NotRegularFile, Progress, SourceError, hookimpl, link_or_copy, open_regular

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be imported (one line), or None for a GGUF file. Only a
    regular file is opened (``open_regular``)."""
    try:
        with open_regular(path) as fh:
            head = fh.read(4)
    except NotRegularFile as exc:
        return str(exc)
    except FileNotFoundError:
        return f"{path.name} is missing (a link to a file that is gone?)"
    except OSError as exc:
        return f"{path.name}: {exc.strerror or exc}"
    return None if head == GGUF_MAGIC else f"{path.name} is not a GGUF file"


class LocalFolderSource(ModelSource):
    name = "local-folder"
    description = "GGUF files already on this computer (a file or a folder)"

    def handles(self, ref: str) -> bool:
        path = Path(ref).expanduser()
        return path.exists() or path.is_symlink()  # a dangling link: say so, not "no such file"

    def fetch(
        self, ref: str, models_dir: Path, *, copy: bool = False, progress: Progress | None = None
    ) -> list[Path]:
        src = Path(ref).expanduser()
        if src.is_dir():
            files = []
            for path in sorted(src.rglob("*.gguf")):
                if path.is_dir():
                    continue  # a folder named *.gguf: rglob looks inside it anyway
                problem = _problem(path)
                if problem is None:
                    files.append(path)
                else:
                    log.warning("skipped %s: %s", path, problem)
            if not files:
                raise SourceError(f"no GGUF files to import in {src}")
        else:
            problem = _problem(src)
            if problem is not None:
                raise SourceError(problem)
            files = [src]
        return [link_or_copy(p, models_dir / p.name, copy=copy, progress=progress) for p in files]


@hookimpl
def register_model_sources(register):  # type: ignore[no-untyped-def]
    register(LocalFolderSource())
