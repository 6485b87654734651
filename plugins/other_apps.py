"""GGUF files that other apps already downloaded: the Hugging Face cache, LM Studio
and Ollama. Each app is a model source whose ``discover()`` lists what is there and
whose ``fetch()`` links it into ``models/`` (no second copy on disk).

Candidate names say where a model comes from, and are what ``models import`` takes:

- ``hf:owner/repo/file.gguf`` (the newest snapshot holding the file);
- ``lmstudio:publisher/repo/file.gguf``;
- ``ollama:model:tag``, ``ollama:namespace/model:tag``, ``ollama:registry/namespace/model:tag``
  (as Ollama itself shows them).

A split model (``name-00001-of-00003.gguf``) is listed once, by its first part;
importing it links every part under its own file name, which is how llama.cpp finds
the others. Multimodal projectors (``mmproj-*``) are not chat models and are left out.

Only the file system is read; no app is asked. Only regular files (and links to
them) are opened: a FIFO, device or socket where a model, a manifest or a settings
file should be is skipped with a warning naming it (a FIFO would block the read
forever). The Hugging Face cache is read with
huggingface_hub's own scanner (``scan_cache_dir``), imported only when there is a
cache to read. A folder that is missing or unreadable is skipped with a debug line;
an entry that is damaged is skipped by ``discover()`` with a warning, and ``fetch()``
says what is wrong with it when asked for that one. ``discover()`` does not raise
for what it finds on disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rmm_tray import (
    SPLIT_NAME,
    LocalModelCandidate,
    ModelSource,
    Progress,
    SourceError,
    file_kind,
    hookimpl,
    link_or_copy,
    open_regular,
)

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
OLLAMA_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
# Ollama's Linux installer runs it as a service user with this home.
OLLAMA_SERVICE_DIR = Path("/usr/share/ollama/.ollama/models")


@dataclass(frozen=True)
class _Found:
    """One model: the files llama.cpp needs (the first is the one it opens) and
    where each goes under models/."""

    name: str
    files: tuple[Path, ...]
    dests: tuple[PurePosixPath, ...]

    @property
    def size(self) -> int:
        return sum(f.stat().st_size for f in self.files)


@dataclass(frozen=True)
class _Problem:
    """An entry that looks like a model but cannot be used. ``warn`` is false for
    ordinary states, such as a split model still downloading."""

    name: str
    reason: str
    warn: bool = True


class _AppSource(ModelSource):
    """What the three apps share: names with a ``prefix``, lookup and linking.
    Each imports into its own folder of models/, ``folder``."""

    prefix = ""
    app = ""  # how the app is named in messages
    folder = ""  # the one of ``folders``

    def _dirs(self) -> list[Path]:
        """The app's folders, the preferred first."""
        raise NotImplementedError

    def _scan_dir(self, top: Path) -> Iterator[_Found | _Problem]:
        raise NotImplementedError

    def _found(self) -> tuple[dict[str, _Found], dict[str, _Problem]]:
        found: dict[str, _Found] = {}
        problems: dict[str, _Problem] = {}
        for top in _existing_dirs(self._dirs(), self.app):
            try:
                for item in self._scan_dir(top):
                    # The first folder wins: the same name in a later one is a duplicate.
                    if isinstance(item, _Found):
                        found.setdefault(item.name, item)
                    else:
                        problems.setdefault(item.name, item)
            except OSError as exc:  # e.g. the folder went away or lost permissions meanwhile
                log.warning("%s: stopped reading %s: %s", self.app, top, exc)
        return found, {n: p for n, p in problems.items() if n not in found}

    def discover(self) -> list[LocalModelCandidate]:
        found, problems = self._found()
        for problem in problems.values():
            log.log(logging.WARNING if problem.warn else logging.DEBUG, "%s: skipped %s: %s",
                    self.app, problem.name, problem.reason)
        candidates = []
        for model in found.values():
            try:
                candidates.append(LocalModelCandidate(model.name, model.files[0], model.size, self.name))
            except OSError as exc:  # removed while we looked
                log.debug("%s: skipping %s: %s", self.app, model.name, exc)
        return candidates

    def handles(self, ref: str) -> bool:
        return ref.startswith(self.prefix)

    def fetch(
        self, ref: str, models_dir: Path, *, copy: bool = False, progress: Progress | None = None
    ) -> list[Path]:
        model = self._lookup(ref)
        made: list[Path] = []
        try:
            for src, dest in zip(model.files, model.dests):
                made.append(link_or_copy(src, models_dir.joinpath(*dest.parts), copy=copy,
                                         progress=progress))
        except BaseException:
            # Half a split model is no model: take back the parts already placed.
            for path in made:
                path.unlink(missing_ok=True)
            raise
        return made

    def _lookup(self, ref: str) -> _Found:
        found, problems = self._found()
        for name in self._spellings(ref):
            if name in found:
                return found[name]
            if name in problems:
                raise SourceError(f"{name} cannot be imported: {problems[name].reason}")
        # "hf:owner/repo" names a repository; fine when it holds a single model.
        inside = sorted(n for n in found if n.startswith(ref.rstrip("/") + "/"))
        if len(inside) == 1:
            return found[inside[0]]
        if inside:
            shown = ", ".join(inside[:4]) + (", ..." if len(inside) > 4 else "")
            raise SourceError(f"'{ref}' holds {len(inside)} models ({shown}); name one")
        raise SourceError(f"no model '{ref}' in {self.app}; see 'rmm-tray models discover'")

    def _spellings(self, ref: str) -> list[str]:
        return [ref]


# -- helpers -------------------------------------------------------------------


def _safe(part: str) -> str:
    """A folder or file name taken from another app, made safe to use under models/."""
    part = part.replace("/", "_").replace("\\", "_").replace(":", "-")
    return "_" if part in ("", ".", "..") else part


def _read_text(path: Path) -> str:
    """A small text file (a manifest, a settings file), only if it is a regular file."""
    with open_regular(path) as fh:
        return fh.read(16 << 20).decode("utf-8")


def _has_gguf_magic(path: Path) -> bool:
    try:
        with open_regular(path) as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _is_projector(file_name: str) -> bool:
    return "mmproj" in file_name.lower()


def _existing_dirs(paths: Iterable[Path], app: str) -> list[Path]:
    """``paths`` that are readable folders, each once."""
    dirs: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        try:
            real = path.resolve()
            if not path.is_dir():
                log.debug("%s: no folder %s", app, path)
                continue
            os.listdir(path)  # readable? (the Ollama service's folder often is not)
        except OSError as exc:
            log.debug("%s: cannot read %s: %s", app, path, exc)
            continue
        if real not in seen:
            seen.add(real)
            dirs.append(path)
    return dirs


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_model_file(rel: str) -> bool:
    """Whether a relative POSIX path names a GGUF file llama.cpp can chat with:
    not hidden, not in a hidden folder, not a projector."""
    parts = rel.split("/")
    return (parts[-1].lower().endswith(".gguf") and not _is_projector(parts[-1])
            and not any(p.startswith(".") for p in parts))


def _gguf_files(top: Path) -> list[str]:
    """GGUF files under ``top`` as sorted relative POSIX paths; unreadable
    subfolders are skipped by os.walk."""
    out = []
    visited: set[str] = set()
    for root, dirs, files in os.walk(top, followlinks=True, onerror=lambda e: log.debug("%s", e)):
        # Links are followed (LM Studio's own imports are links), so a link loop must end.
        real = os.path.realpath(root)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            rel = Path(root, name).relative_to(top).as_posix()
            if _is_model_file(rel):
                out.append(rel)
    return sorted(out)


def _models_in(rels: list[str]) -> Iterator[tuple[str, list[str], str]]:
    """The models among GGUF files (sorted relative paths), as (name, files,
    problem): the relative path of the file llama.cpp opens, every file (the
    parts of a split model in order), and why it cannot be used ("" when it can:
    a split model with a part missing is still downloading)."""
    groups: dict[tuple[str, str, int], dict[int, str]] = {}
    for rel in rels:
        folder, _, file_name = rel.rpartition("/")
        match = SPLIT_NAME.match(file_name)
        if not match:
            yield rel, [rel], ""
            continue
        key = (folder, match["stem"], int(match["total"]))
        groups.setdefault(key, {})[int(match["part"])] = rel
    for (folder, stem, count), parts in groups.items():
        first = f"{folder}/" * bool(folder) + f"{stem}-00001-of-{count:05d}.gguf"
        have = [parts[i] for i in sorted(parts)]
        if sorted(parts) != list(range(1, count + 1)):
            yield first, have, f"has {len(parts)} of its {count} parts (still downloading?)"
        else:
            yield first, have, ""


def _check(files: list[Path]) -> tuple[str, bool]:
    """Why ``files`` cannot be used, and whether that deserves a warning; ("", _)
    when every one is there (a link may dangle) and is a GGUF file."""
    for path in files:
        try:
            mode = os.stat(path).st_mode
        except OSError:  # a dangling link: an app's download moved or removed
            return f"{path} is missing", False
        if not stat.S_ISREG(mode):
            return f"{path} is not a regular file ({file_kind(mode)})", True
        if not _has_gguf_magic(path):
            return f"{path} is not a GGUF file", True
    return "", False


def _model(name: str, files: list[Path], dests: list[PurePosixPath], problem: str = "") -> _Found | _Problem:
    if problem:
        return _Problem(name, problem, warn=False)
    reason, warn = _check(files)
    if reason:
        return _Problem(name, reason, warn)
    return _Found(name, tuple(files), tuple(dests))


# -- Hugging Face cache ----------------------------------------------------------


def hf_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads (HF_HUB_CACHE, HF_HOME...), as it
    decides it. Its constants are light to import; its scanner is not."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


class HuggingFaceCacheSource(_AppSource):
    name = "huggingface-cache"
    description = "GGUF files in the Hugging Face cache (HF_HUB_CACHE, HF_HOME)"
    label = "Hugging Face cache"
    prefix = "hf:"
    app = "the Hugging Face cache"
    folder = "huggingface"
    folders = {folder: app}

    def _dirs(self) -> list[Path]:
        return [hf_cache_dir()]

    def _scan_dir(self, top: Path) -> Iterator[_Found | _Problem]:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir(top)
        for problem in cache.warnings:
            # The scanner gives up on a whole repository for one broken entry.
            log.warning("%s: skipped a repository: %s", self.app, problem)
        for repo in sorted(cache.repos, key=lambda r: r.repo_id):
            if repo.repo_type == "model":
                yield from self._repo(repo)

    def _repo(self, repo: Any) -> Iterator[_Found | _Problem]:
        # The revision refs/main points to first, then the newest. A file kept only
        # in an older snapshot is still a model on disk, so it is listed from there.
        revisions = sorted(repo.revisions,
                           key=lambda r: ("main" not in r.refs, -r.last_modified, r.commit_hash))
        seen: set[str] = set()
        repo_parts = [_safe(p) for p in repo.repo_id.split("/")]
        for revision in revisions:
            snapshot = Path(revision.snapshot_path)
            rels = sorted(rel for rel in (Path(f.file_path).relative_to(snapshot).as_posix()
                                          for f in revision.files) if _is_model_file(rel))
            for first, files, problem in _models_in(rels):
                name = f"hf:{repo.repo_id}/{first}"
                if name in seen:
                    continue
                model = _model(name, [snapshot / rel for rel in files], [
                    PurePosixPath(self.folder, *repo_parts, *(_safe(p) for p in rel.split("/")))
                    for rel in files], problem)
                if isinstance(model, _Found):
                    seen.add(name)
                yield model


# -- LM Studio -------------------------------------------------------------------


def lmstudio_dirs() -> list[Path]:
    """LM Studio's models folders: the one set in its settings, then the default
    ones of current and older versions."""
    home = Path.home()
    app_dir = home / ".lmstudio"
    # Newer versions may keep their folder elsewhere and say where in this file.
    pointer = home / ".lmstudio-home-pointer"
    try:
        if pointer.is_file():
            app_dir = Path(_read_text(pointer).strip()).expanduser()
    except (OSError, UnicodeDecodeError) as exc:
        log.debug("LM Studio: cannot read %s: %s", pointer, exc)
    dirs = []
    settings = app_dir / "settings.json"
    try:
        folder = json.loads(_read_text(settings)).get("downloadsFolder")
        if isinstance(folder, str) and folder:
            dirs.append(Path(folder).expanduser())
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("LM Studio: cannot read %s: %s", settings, exc)
    return [*dirs, app_dir / "models", home / ".cache" / "lm-studio" / "models"]


class LMStudioSource(_AppSource):
    name = "lmstudio"
    description = "GGUF files downloaded by LM Studio"
    label = "LM Studio"
    prefix = "lmstudio:"
    app = "LM Studio"
    folder = "lmstudio"
    folders = {folder: app}

    def _dirs(self) -> list[Path]:
        return lmstudio_dirs()

    def _scan_dir(self, top: Path) -> Iterator[_Found | _Problem]:
        for publisher_dir in _subdirs(top):
            try:
                repos = _subdirs(publisher_dir)
            except OSError as exc:
                log.warning("%s: skipping %s: %s", self.app, publisher_dir, exc)
                continue
            for repo_dir in repos:
                publisher, repo = publisher_dir.name, repo_dir.name
                for first, rels, problem in _models_in(_gguf_files(repo_dir)):
                    yield _model(f"lmstudio:{publisher}/{repo}/{first}", [repo_dir / rel for rel in rels], [
                        PurePosixPath(self.folder, _safe(publisher), _safe(repo),
                                      *(_safe(p) for p in rel.split("/")))
                        for rel in rels], problem)


# -- Ollama ----------------------------------------------------------------------


def ollama_dirs() -> list[Path]:
    if os.environ.get("OLLAMA_MODELS"):
        return [Path(os.environ["OLLAMA_MODELS"]).expanduser()]
    return [Path.home() / ".ollama" / "models", OLLAMA_SERVICE_DIR]


def ollama_name(parts: tuple[str, ...]) -> str:
    """``registry/namespace.../model/tag`` (a manifest's path) as Ollama shows it."""
    registry, *namespace, model, tag = parts
    if registry != OLLAMA_DEFAULT_REGISTRY:
        return f"{registry}/{'/'.join(namespace)}/{model}:{tag}"
    if namespace == ["library"]:
        return f"{model}:{tag}"
    return f"{'/'.join(namespace)}/{model}:{tag}"


class OllamaSource(_AppSource):
    name = "ollama"
    description = "models pulled by Ollama (OLLAMA_MODELS)"
    label = "Ollama"
    prefix = "ollama:"
    app = "Ollama"
    folder = "ollama"
    folders = {folder: app}

    def _spellings(self, ref: str) -> list[str]:
        # Ollama's own rule: no tag means "latest".
        tail = ref[len(self.prefix):].rsplit("/", 1)[-1]
        return [ref] if ":" in tail else [ref, f"{ref}:latest"]

    def _dirs(self) -> list[Path]:
        return ollama_dirs()

    def _scan_dir(self, top: Path) -> Iterator[_Found | _Problem]:
        manifests = top / "manifests"
        for root, dirs, files in os.walk(manifests, onerror=lambda e: log.debug("%s", e)):
            dirs.sort()
            for file_name in sorted(files):
                path = Path(root, file_name)
                parts = path.relative_to(manifests).parts
                if len(parts) < 4 or file_name.startswith("."):
                    continue
                try:
                    found = self._manifest(top, path, parts)
                except OSError as exc:
                    found = _Problem(f"ollama:{ollama_name(parts)}", str(exc))
                if found:
                    yield found

    def _manifest(self, top: Path, path: Path, parts: tuple[str, ...]) -> _Found | _Problem | None:
        shown = ollama_name(parts)
        name = f"ollama:{shown}"
        try:
            manifest = json.loads(_read_text(path))
            layer = next(x for x in manifest["layers"] if x.get("mediaType") == OLLAMA_MODEL_LAYER)
            digest = OLLAMA_DIGEST.match(layer["digest"])
            if not digest:
                raise ValueError(f"odd digest {layer['digest']!r}")
        except StopIteration:
            return None  # not a model (an adapter, an embedding set up another way)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _Problem(name, f"its manifest {path} is damaged ({type(exc).__name__}: {exc})")
        blobs = top / "blobs"
        # Older Ollama versions named blobs with a colon.
        blob = next((b for b in (blobs / f"sha256-{digest[1]}", blobs / f"sha256:{digest[1]}")
                     if b.exists()), blobs / f"sha256-{digest[1]}")
        size = layer.get("size")
        if isinstance(size, int) and blob.exists() and blob.stat().st_size != size:
            return _Problem(name, f"{blob} has {blob.stat().st_size} bytes, its manifest says {size}")
        *folders, last = shown.split("/")
        model, tag = last.rsplit(":", 1)
        dest = PurePosixPath(self.folder, *(_safe(p) for p in folders), _safe(f"{model}-{tag}") + ".gguf")
        found = _model(name, [blob], [dest])
        if isinstance(found, _Problem):  # a manifest without its blob is damaged, not in progress
            return _Problem(name, found.reason, warn=True)
        return found


@hookimpl
def register_model_sources(register):  # type: ignore[no-untyped-def]
    register(HuggingFaceCacheSource())
    register(LMStudioSource())
    register(OllamaSource())
