"""What the core checks around every download, whatever the source: names from a
server, free disk space, and the sha256 of the bytes that arrived."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
from pathlib import Path, PurePosixPath

from rmm_tray.units import human_size

# Staging folder inside models/: hidden, so the model list never shows a half file,
# and on the same file system, so finishing is a rename.
STAGING = ".downloads"
PART_SUFFIX = ".part"

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,95}$")
_FILE_SEGMENT = re.compile(r"^[^\x00-\x1f/\\:*?\"<>|]{1,200}$")


class DownloadError(RuntimeError):
    """A download cannot go on; the message is one line for the person."""


def safe_relative(repo_id: str, filename: str) -> PurePosixPath:
    """``owner/repo/filename`` as a path that stays inside models/, or DownloadError.
    A server names the files: never trust it with a path."""
    owner_repo = repo_id.split("/")
    if len(owner_repo) != 2 or not all(_SEGMENT.match(s) and s not in (".", "..") for s in owner_repo):
        raise DownloadError(f"refusing repository name {repo_id!r}: not owner/name")
    parts = filename.split("/")
    if (
        not filename
        or filename.startswith("/")
        or "\\" in filename
        or any(p in ("", ".", "..") or not _FILE_SEGMENT.match(p) for p in parts)
        or not filename.lower().endswith(".gguf")
    ):
        raise DownloadError(f"refusing file name {filename!r} from {repo_id}: not a plain .gguf path")
    return PurePosixPath(*owner_repo, *parts)


def destination(models_dir: Path, repo_id: str, filename: str) -> Path:
    path = models_dir.joinpath(safe_relative(repo_id, filename))
    # Belt and braces: the resolved path must still be under models/ (a link in the way).
    root = models_dir.resolve()
    if root not in path.parent.resolve().parents and path.parent.resolve() != root:
        raise DownloadError(f"refusing {filename!r}: it would land outside models/")
    return path


def staging(models_dir: Path, repo_id: str, filename: str) -> Path:
    rel = safe_relative(repo_id, filename)
    return models_dir / STAGING / rel.parent / (rel.name + PART_SUFFIX)


def disk_margin(size: int) -> int:
    """Room left over after a download: the desktop needs some too."""
    return max(256 << 20, size // 20)


def check_disk_space(folder: Path, needed: int, what: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    margin = disk_margin(needed)
    if needed + margin > free:
        raise DownloadError(
            f"not enough disk space for {what}: it needs {human_size(needed)} "
            f"(+ {human_size(margin)} to spare), {human_size(free)} is free"
        )


class Sha256Follower:
    """Hashes a file while it is being written, on its own thread, so verifying
    costs almost nothing once the last byte lands. ``restart()`` when the writer
    went back to the start (a server that ignored the Range)."""

    CHUNK = 8 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done_writing = threading.Event()
        self._restart = threading.Event()
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def restart(self) -> None:
        self._restart.set()

    def finish(self, timeout: float | None = None) -> str:
        """Wait for the hash of the whole file (the writer has closed it)."""
        self._done_writing.set()
        self._thread.join(timeout)
        if self._error is not None:
            raise self._error
        assert self._digest is not None
        return self._digest

    def stop(self) -> None:
        self._done_writing.set()

    def _run(self) -> None:
        try:
            while True:
                self._restart.clear()
                if self._hash_once():
                    return
        except BaseException as exc:  # surfaced by finish()
            self._error = exc

    def _hash_once(self) -> bool:
        h = hashlib.sha256()
        pos = 0
        while not self.path.exists():
            if self._done_writing.wait(0.05):
                break
        with self.path.open("rb") as fh:
            while True:
                if self._restart.is_set():
                    return False
                finished = self._done_writing.is_set()
                chunk = fh.read(self.CHUNK)
                if chunk:
                    h.update(chunk)
                    pos += len(chunk)
                    continue
                if finished:  # read to the end after the writer closed the file
                    self._digest = h.hexdigest()
                    return True
                time.sleep(0.01)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()
