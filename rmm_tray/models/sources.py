"""What a model source offers: downloaders and importers of GGUF files,
registered through ``register_model_sources``.

A source can do any of three things, and says which by what it overrides:

- ``discover()``: GGUF files already on this machine (other apps' folders);
- ``handles()`` + ``fetch()``: bring a file named by a reference into ``models/``;
- ``search()`` + ``repo()`` + ``download()``: a catalogue of remote models.

The core does the rest around a download, the same for every source: it checks
names and free disk space first, shows progress, verifies the sha256 the source
gave, and only then moves the file among the models.
"""

from __future__ import annotations

import os
import shutil
import threading
from abc import ABC
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

from rmm_tray.errors import RmmError

#: progress(done_bytes, total_bytes)
Progress = Callable[[int, int], None]


class SourceError(RmmError, RuntimeError):
    """A source could not do what was asked; the message is one line a person can act on.
    ``retry=True`` marks a passing failure (a dropped connection) worth another try."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


class ModelExists(RmmError, FileExistsError):
    """The place a model would go in models/ is taken."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "already in models/"


class DownloadCancelled(Exception):
    """The person cancelled the download."""


@dataclass(frozen=True)
class LocalModelCandidate:
    """A GGUF file already on this disk that can be imported without copying."""

    name: str
    path: Path
    size: int
    source: str


@dataclass(frozen=True)
class RemotePart:
    """One file on the server. ``sha256`` is what the bytes must hash to (the LFS oid)."""

    filename: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class RemoteModelFile:
    """One model in a repository: a single GGUF file, or the parts of a split one
    (``...-00001-of-00003.gguf``) that llama.cpp loads together."""

    repo: str
    name: str  # the first part's file name: what llama.cpp is given
    parts: tuple[RemotePart, ...]
    quantization: str = ""

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)


@dataclass(frozen=True)
class RemoteRepo:
    """A search result."""

    id: str
    downloads: int = 0
    likes: int = 0
    last_modified: str = ""
    gated: bool = False


@dataclass(frozen=True)
class RemoteRepoDetails:
    """A repository's model card summary, licence and GGUF files."""

    id: str
    summary: str = ""
    license: str = ""
    gated: bool = False
    files: tuple[RemoteModelFile, ...] = field(default_factory=tuple)


def link_or_copy(src: Path, dest: Path, *, copy: bool, progress: Progress | None = None) -> Path:
    """Put ``src`` at ``dest``: a symlink to its real path, else a hard link, else a
    copy (Windows without developer mode cannot symlink; another drive cannot hard
    link). ``copy=True`` always copies. Raises ``FileExistsError`` when ``dest`` is
    taken; a failed copy leaves nothing behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        raise ModelExists(f"{dest.name} is already in models/")
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


class ModelSource(ABC):
    name: str = ""
    description: str = ""
    #: a short name for people, shown next to what the source found ("LM Studio");
    #: empty: ``name``
    label: str = ""
    #: the folders of ``models/`` that ``fetch`` puts models in, each with how to
    #: name where they came from ("the Hugging Face cache"); the core tells a
    #: model's origin by them
    folders: ClassVar[Mapping[str, str]] = {}

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

    # -- remote catalogues ---------------------------------------------------

    #: whether this source answers search/repo/download
    remote: bool = False

    def search(self, query: str, *, sort: str = "downloads", limit: int = 20) -> list[RemoteRepo]:
        """Repositories with GGUF files matching ``query``; ``sort`` is "downloads"
        or "recent"."""
        raise NotImplementedError

    def repo(self, repo_id: str) -> RemoteRepoDetails:
        """A repository's card summary, licence and GGUF files (split files grouped)."""
        raise NotImplementedError

    def download(
        self, part: RemotePart, repo_id: str, out: BinaryIO, *, offset: int,
        progress: Progress, cancel: threading.Event,
    ) -> None:
        """Write the bytes of ``part`` from ``offset`` on to ``out`` (a binary file
        positioned at ``offset``: an earlier, interrupted try left the bytes before
        it). Call ``progress(done, total)`` as bytes arrive; raise
        ``DownloadCancelled`` soon after ``cancel`` is set. The core hashes what is
        written, verifies the sha256 and moves the file into place afterwards."""
        raise NotImplementedError
