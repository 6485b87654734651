"""Crash-safe file writes: a reader sees the old file or the new one, never half.

A file that is a symbolic link (dotfile managers link config.toml into a
repository) is written through: the new text lands next to the link's target
and replaces it, and the link stays a link.

``locked(path)`` is for read-modify-write: every process that changes a shared
file (config.toml, state.json) holds the same lock file beside it, so changes
made at the same time all land instead of the last writer's only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmm_tray.errors import RmmError

#: How long an edit waits for another process's edit of the same file. Edits take
#: milliseconds; a lock held this long belongs to a process that is stuck.
LOCK_TIMEOUT_S = 30.0


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; rename is durable enough there.
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def real_path(path: Path) -> Path:
    """The file a write to ``path`` must replace: the target of a link (of a chain
    of them), else ``path`` itself. A dangling link gives the file it would name."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    # Renaming over the link itself would turn it into a regular file and leave
    # the linked file (the one the person keeps) unchanged.
    path = real_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here: it pulls in random and shutil, which a command that only reads need not pay

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _keep_mode(path: Path, tmp: str) -> None:
    # mkstemp creates 0600; a file the person made readable to others stays so.
    try:
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def lock_path(path: Path) -> Path:
    """The lock file of ``path``: beside the real file, so that a linked config and
    its target share one lock whichever name a process opened."""
    real = real_path(path)
    return real.with_name(f".{real.name}.lock")


@contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the inter-process lock of ``path`` (an flock on Unix, a Windows lock
    there) while reading, changing and writing it."""
    from filelock import FileLock, Timeout

    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    # A fresh lock object per edit: flock holds between two of them in one process
    # too, so the popup's worker threads wait for each other as processes do.
    lock = FileLock(lock_file, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise RmmError(f"{path.name} is being changed by another process (lock {lock_file} "
                       f"held over {timeout:.0f} s); try again") from None
    try:
        yield
    finally:
        lock.release()
