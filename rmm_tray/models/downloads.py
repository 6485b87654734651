"""Downloads of remote models: a queue worked by one thread, each download
checked before (names, disk space), watched during (bytes, rate, ETA, cancel,
retries that resume) and verified after (sha256) before it counts as a model.

A download in progress lives in ``models/.downloads/`` as ``<file>.part`` plus a
small JSON note of what it is, so a restarted app (or the same ``pull`` again)
picks it up where it stopped; the model list never shows it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rmm_tray.home.atomic import fsync_dir
from rmm_tray.home.files import NotRegularFile, open_regular
from rmm_tray.models.download_checks import (
    STAGING,
    DownloadError,
    HashingFile,
    PartTooLong,
    check_disk_space,
    destination,
    staging,
)
from rmm_tray.models.sources import DownloadCancelled, ModelSource, RemoteModelFile, RemotePart, SourceError
from rmm_tray.models.store import remove_empty_dirs
from rmm_tray.units import human_size

log = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
NOTIFY_EVERY_S = 0.1

Listener = Callable[["Download"], None]


@dataclass
class Download:
    """One model being fetched, as the popup, the tray and the CLI show it."""

    source: str
    repo: str
    name: str
    size: int
    path: Path  # where the model lands in models/
    parts: tuple[RemotePart, ...]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "queued"  # queued, downloading, verifying, done, failed, cancelled
    done: int = 0
    rate: float = 0.0  # bytes per second, smoothed
    error: str = ""
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def eta_s(self) -> float | None:
        if self.state != "downloading" or self.rate <= 0:
            return None
        return max(0.0, (self.size - self.done) / self.rate)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "source": self.source, "repo": self.repo, "name": self.name,
            "size": self.size, "path": str(self.path), "state": self.state, "done": self.done,
            "rate": round(self.rate), "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "error": self.error,
        }


class Downloader:
    def __init__(self, models_dir: Path, sources: Callable[[], list[ModelSource]] | None = None) -> None:
        self.models_dir = models_dir
        self._sources = sources or (lambda: [])
        self.listeners: list[Listener] = []
        self._jobs: dict[str, Download] = {}
        self._queue: queue.Queue[Download] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- planning ------------------------------------------------------------

    def prepare(self, source: ModelSource, file: RemoteModelFile) -> Download:
        """Check names and disk space; nothing is written when this raises."""
        path = destination(self.models_dir, file.repo, file.name)
        for part in file.parts:
            destination(self.models_dir, file.repo, part.filename)
        if path.exists():
            raise DownloadError(f"{_rel(path, self.models_dir)} is already in models/")
        job = Download(source.name, file.repo, file.name, file.size, path, file.parts)
        have = sum(self._partial_size(job, p) for p in file.parts)
        check_disk_space(self.models_dir, max(0, file.size - have), f"{file.repo}/{file.name}")
        return job

    def _partial_size(self, job: Download, part: RemotePart) -> int:
        try:
            return staging(self.models_dir, job.repo, part.filename).stat().st_size
        except OSError:
            return 0

    # -- running -------------------------------------------------------------

    def run(self, source: ModelSource, job: Download) -> Path:
        """Download, verify and move into place, here and now. Raises DownloadError
        (or DownloadCancelled); a failure that is not the file's fault leaves the
        ``.part`` file so that the next try resumes."""
        with self._lock:
            self._jobs[job.id] = job
        self._write_note(job)
        try:
            for index, part in enumerate(job.parts):
                base = sum(p.size for p in job.parts[:index])
                self._fetch_part(source, job, part, base)
            for part in job.parts:
                staged = staging(self.models_dir, job.repo, part.filename)
                final = destination(self.models_dir, job.repo, part.filename)
                final.parent.mkdir(parents=True, exist_ok=True)
                # On disk before it is called a model: a verified file must not come
                # back from a power cut as a short one that nobody checks again.
                with staged.open("rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(staged, final)
                fsync_dir(final.parent)
        except DownloadCancelled:
            self._discard(job)
            self._set(job, "cancelled")
            raise
        except DownloadError as exc:
            self._set(job, "failed", str(exc))
            raise
        except OSError as exc:
            message = _os_error(exc, job)
            self._set(job, "failed", message)
            raise DownloadError(message) from None
        self._note_path(job).unlink(missing_ok=True)
        self._prune(job)
        self._set(job, "done")
        return job.path

    def _fetch_part(self, source: ModelSource, job: Download, part: RemotePart, base: int) -> None:
        part_path = staging(self.models_dir, job.repo, part.filename)
        for attempt in range(len(RETRY_DELAYS) + 1):
            offset = part_path.stat().st_size if part_path.exists() else 0
            if part.size and offset > part.size:
                offset = 0  # longer than the file can be: not a prefix of it
            meter = _Meter(job, base, self._notify)
            self._set(job, "downloading")
            # Never more than the listed size: an endless body stops at the first byte past it.
            out = HashingFile(part_path, offset, hashing=bool(part.sha256), limit=part.size or None)
            try:
                self._download(source, job, part, out, offset, meter)
                self._set(job, "verifying")
                self._verify(job, part, part_path, out.digest())
                return
            except (DownloadCancelled, DownloadError):
                raise
            except SourceError as exc:
                if not exc.retry or attempt == len(RETRY_DELAYS):
                    raise DownloadError(str(exc)) from None
                error = str(exc)
            except OSError:
                raise
            except Exception as exc:  # a source's own failure: retry, then report it
                if attempt == len(RETRY_DELAYS):
                    raise DownloadError(f"{job.repo}/{part.filename}: {exc}") from None
                error = f"{type(exc).__name__}: {exc}"
            finally:
                out.close()
            log.warning("download %s: %s; retrying in %.0f s", part.filename, error, RETRY_DELAYS[attempt])
            if job.cancel.wait(RETRY_DELAYS[attempt]):
                raise DownloadCancelled()

    def _download(self, source: ModelSource, job: Download, part: RemotePart, out: HashingFile,
                  offset: int, meter: "_Meter") -> None:
        """The source's download, with the writer's refusal of surplus bytes turned into
        a failure that keeps nothing, even when the source caught the refusal itself."""
        try:
            source.download(part, job.repo, out, offset=offset, progress=meter, cancel=job.cancel)
        except Exception:
            if not out.overflowed:
                raise
        if out.overflowed:
            out.close()
            self._discard(job)
            raise PartTooLong(f"{part.filename}: the server sent more than the {human_size(part.size)} "
                              "it listed; stopped and deleted") from None

    def _verify(self, job: Download, part: RemotePart, path: Path, digest: str | None) -> None:
        size = path.stat().st_size
        if part.size and size != part.size:
            self._discard(job)
            raise DownloadError(f"{part.filename}: got {size} bytes, expected {part.size}; deleted")
        if not part.sha256 or digest is None:
            log.warning("%s: the source gave no sha256; not verified", part.filename)
            return
        if digest != part.sha256.lower():
            self._discard(job)
            raise DownloadError(
                f"{part.filename}: sha256 does not match the Hub's ({digest[:12]}… ≠ "
                f"{part.sha256[:12]}…): the download was corrupt and has been deleted"
            )

    # -- the queue (desktop app) ---------------------------------------------

    def submit(self, source: ModelSource, file: RemoteModelFile) -> Download:
        job = self.prepare(source, file)
        with self._lock:
            for other in self._jobs.values():
                if other.path == job.path and not other.finished:
                    return other
            self._jobs[job.id] = job
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="downloads", daemon=True)
                self._worker.start()
        self._queue.put((source, job))  # type: ignore[arg-type]
        self._notify(job)
        return job

    def _work(self) -> None:
        while True:
            source, job = self._queue.get()  # type: ignore[misc]
            if job.cancel.is_set():
                self._set(job, "cancelled")
                continue
            try:
                self.run(source, job)
            except (DownloadError, DownloadCancelled):
                pass  # the job says what happened
            except Exception as exc:  # the worker must outlive any one download
                log.exception("download %s failed", job.name)
                self._set(job, "failed", f"{job.name}: {exc}")

    def cancel(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.finished:
            return False
        job.cancel.set()
        if job.state == "queued":
            self._set(job, "cancelled")
        return True

    def jobs(self) -> list[Download]:
        with self._lock:
            return list(self._jobs.values())

    # -- interrupted downloads -----------------------------------------------

    def interrupted(self) -> list[dict[str, Any]]:
        """Notes of downloads a previous run left unfinished. A note that is not
        one (not a regular file, not JSON, the wrong shape or types) is skipped
        with a warning; the others still resume."""
        notes = []
        for path in sorted((self.models_dir / STAGING).rglob("*.part.json")):
            try:
                notes.append(_check_note(_read_note(path)))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring download note %s: %s", path.name, exc)
        return notes

    def resume_interrupted(self) -> list[Download]:
        """Queue again what a previous run left unfinished, with the source that started it."""
        sources = {s.name: s for s in self._sources()}
        resumed = []
        for note in self.interrupted():
            source = sources.get(note["source"])
            if source is None:
                continue
            try:
                parts = tuple(RemotePart(**p) for p in note["parts"])
                file = RemoteModelFile(note["repo"], note["name"], parts, note.get("quantization", ""))
                resumed.append(self.submit(source, file))
            except (DownloadError, KeyError, TypeError, ValueError, OSError) as exc:
                log.warning("not resuming %s: %s", note.get("name"), exc)
        return resumed

    # -- bookkeeping ---------------------------------------------------------

    def _note_path(self, job: Download) -> Path:
        return staging(self.models_dir, job.repo, job.name).with_suffix(".part.json")

    def _write_note(self, job: Download) -> None:
        note = {"source": job.source, "repo": job.repo, "name": job.name,
                "parts": [asdict(p) for p in job.parts]}
        path = self._note_path(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not fsynced: on ext4 an fsync waits for every dirty page on the disk (the
        # last download's included), and a lost note costs only the automatic resume.
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(note), encoding="utf-8")
        os.replace(tmp, path)

    def _discard(self, job: Download) -> None:
        for part in job.parts:
            staging(self.models_dir, job.repo, part.filename).unlink(missing_ok=True)
        self._note_path(job).unlink(missing_ok=True)
        self._prune(job)

    def _prune(self, job: Download) -> None:
        """Remove the staging folders this download emptied."""
        remove_empty_dirs(staging(self.models_dir, job.repo, job.name).parent, self.models_dir / STAGING)

    def _set(self, job: Download, state: str, error: str = "") -> None:
        job.state, job.error = state, error
        if state != "downloading":
            job.rate = 0.0 if state != "verifying" else job.rate
        self._notify(job)

    def _notify(self, job: Download) -> None:
        for listener in list(self.listeners):
            try:
                listener(job)
            except Exception:
                log.exception("download listener failed")


class _Meter:
    """The progress callback given to a source: bytes, a smoothed rate, and
    notifications at most every NOTIFY_EVERY_S."""

    def __init__(self, job: Download, base: int, notify: Listener) -> None:
        self.job, self.base, self.notify = job, base, notify
        self.last_t = self.last_notify = time.monotonic()
        self.last_rate_done: int | None = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        job = self.job
        if self.last_rate_done is None or done < self.last_rate_done:
            self.last_rate_done, self.last_t = done, now
        elif now - self.last_t >= 0.25:
            rate = (done - self.last_rate_done) / (now - self.last_t)
            job.rate = rate if job.rate == 0 else 0.7 * job.rate + 0.3 * rate
            self.last_t, self.last_rate_done = now, done
        job.done = self.base + done
        if now - self.last_notify >= NOTIFY_EVERY_S or (total and done >= total):
            self.last_notify = now
            self.notify(job)


NOTE_MAX_BYTES = 1 << 20


def _read_note(path: Path) -> Any:
    try:
        with open_regular(path) as fh:  # a FIFO named like a note must not hang the start
            return json.loads(fh.read(NOTE_MAX_BYTES).decode("utf-8"))
    except NotRegularFile as exc:
        raise ValueError(str(exc)) from None


def _check_note(note: Any) -> dict[str, Any]:
    """The note as written by ``_write_note``, or ValueError saying what is wrong."""
    if not isinstance(note, dict):
        raise ValueError(f"expected a JSON object, got {type(note).__name__}")
    for key in ("source", "repo", "name"):
        if not isinstance(note.get(key), str) or not note[key]:
            raise ValueError(f"{key!r} is not a name")
    if not isinstance(note.get("quantization", ""), str):
        raise ValueError("'quantization' is not text")
    parts = note.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ValueError("'parts' is not a list of files")
    for p in parts:
        if (not isinstance(p, dict) or set(p) - {"filename", "size", "sha256"}
                or not isinstance(p.get("filename"), str)
                or not isinstance(p.get("size"), int) or isinstance(p.get("size"), bool) or p["size"] < 0
                or not isinstance(p.get("sha256"), (str, type(None)))):
            raise ValueError("a part is not {filename, size, sha256}")
    return note


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _os_error(exc: OSError, job: Download) -> str:
    import errno

    if exc.errno == errno.ENOSPC:
        return f"the disk filled up while downloading {job.name}; the partial file is kept to resume"
    return f"{job.name}: {exc.strerror or exc}"
