"""What a model source offers: downloaders and importers of GGUF files,
registered through ``register_model_sources``."""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: progress(done_bytes, total_bytes)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LocalModelCandidate:
    """A GGUF file already on this disk that can be imported without copying."""

    name: str
    path: Path
    size: int
    source: str


class ModelSource(ABC):
    name: str = ""
    description: str = ""

    def discover(self) -> list[LocalModelCandidate]:
        """GGUF files on this machine outside ``models/`` (other apps' folders)."""
        return []

    def handles(self, ref: str) -> bool:
        """Whether ``fetch`` understands this reference (a path, a repo id, a URL)."""
        return False

    def fetch(
        self, ref: str, models_dir: Path, *, copy: bool = False, progress: Progress | None = None
    ) -> list[Path]:
        """Bring the model(s) named by ``ref`` into ``models_dir``; return their paths."""
        raise NotImplementedError
