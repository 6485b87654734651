"""What the core checks around every download, whatever the source: names from a
server, free disk space, and the sha256 of the bytes that arrived."""

from __future__ import annotations

import hashlib
import queue
import re
import shutil
import threading
from pathlib import Path, PurePosixPath

from rmm_tray.errors import RmmError
from rmm_tray.units import human_size

# Staging folder inside models/: hidden, so the model list never shows a half file,
# and on the same file system, so finishing is a rename.
STAGING = ".downloads"
PART_SUFFIX = ".part"

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,95}$")
_FILE_SEGMENT = re.compile(r"^[^\x00-\x1f/\\:*?\"<>|]{1,200}$")


class DownloadError(RmmError, RuntimeError):
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


class PartTooLong(DownloadError):
    """The server sent more bytes than the file it listed holds."""


class HashingFile:
    """The file a source writes a download into. Each chunk written is also
    handed to a thread that feeds sha256 (hashlib lets go of the GIL), so the
    hash is ready when the last byte lands and the bytes are never read back.
    Opening it hashes what an earlier try left, so a resumed download is
    verified whole. A writer that seeks back (a server that ignored the Range)
    makes the hash be taken again from the file at the end.

    ``limit`` is the size the source listed: a write that would go past it is
    refused (``PartTooLong``, and ``overflowed`` stays set even if a source
    swallows the exception), so an endless body cannot fill the disk."""

    QUEUE_CHUNKS = 32  # bounds the memory when the hash falls behind

    def __init__(self, path: Path, offset: int, *, hashing: bool = True, limit: int | None = None) -> None:
        self.path = path
        self.limit = limit
        self.overflowed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("r+b" if path.exists() else "wb")
        self._fh.truncate(offset)
        self._fh.seek(offset)
        self._dirty = False
        self._sha = hashlib.sha256() if hashing else None
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUE_CHUNKS)
        self._thread: threading.Thread | None = None
        if self._sha is not None:
            self._thread = threading.Thread(target=self._hash, args=(offset,), name="sha256", daemon=True)
            self._thread.start()

    def _hash(self, prefix: int) -> None:
        assert self._sha is not None
        if prefix:
            with self.path.open("rb") as fh:
                left = prefix
                while left > 0 and (chunk := fh.read(min(left, 8 << 20))):
                    self._sha.update(chunk)
                    left -= len(chunk)
        while (chunk := self._queue.get()) is not None:
            self._sha.update(chunk)

    # -- what a source uses (a writable binary file) --------------------------

    def write(self, data: bytes) -> int:
        if self.limit is not None and self._fh.tell() + len(data) > self.limit:
            self.overflowed = True
            raise PartTooLong(f"{self.path.name.removesuffix(PART_SUFFIX)}: the server sent more than "
                              f"the {human_size(self.limit)} it listed")
        n = self._fh.write(data)
        if self._thread is not None and not self._dirty:
            self._queue.put(bytes(data) if not isinstance(data, bytes) else data)
        return n

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        if (whence, pos) != (2, 0) and pos != self._fh.tell():
            self._dirty = True
        return self._fh.seek(pos, whence)

    def truncate(self, size: int | None = None) -> int:
        if size is None or size < self._fh.tell():
            self._dirty = True
        return self._fh.truncate(size)

    def flush(self) -> None:
        self._fh.flush()

    def fileno(self) -> int:
        return self._fh.fileno()

    def writable(self) -> bool:
        return True

    # -- what the core uses ---------------------------------------------------

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def digest(self) -> str | None:
        """The sha256 of the whole file (after ``close``); None when not hashing."""
        self.close()
        if self._sha is None:
            return None
        return sha256_file(self.path) if self._dirty else self._sha.hexdigest()

    def __enter__(self) -> "HashingFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()
