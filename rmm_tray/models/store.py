"""The models/ folder: what is there, and finding one by a name a person types."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmm_tray.errors import RmmError
from rmm_tray.home.files import file_kind
from rmm_tray.models.cache import MetadataCache, default_cache_file
from rmm_tray.models.gguf import GGUFError, GGUFInfo, read_gguf

log = logging.getLogger(__name__)

#: How a destructive command wants a model named.
NAME_HINT = "name the model as 'rmm-tray models list' shows it"

# Files still being written by a download or an import.
PARTIAL_SUFFIXES = (".part", ".incomplete", ".tmp")
# llama.cpp's gguf-split names: NAME-00001-of-00003.gguf
SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.IGNORECASE)


class ModelNotFound(RmmError, LookupError):
    """No model, or more than one, matches; the message is one line."""


@dataclass
class LocalModel:
    name: str  # path relative to models/, with forward slashes (a split model: its first part)
    path: Path
    size: int  # all parts together
    info: GGUFInfo | None = None
    error: str | None = None
    linked: bool = False
    #: Every file of the model: one, or the parts of a split model that are present.
    parts: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        info = self.info
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "parts": max(1, len(self.parts)),
            "linked": self.linked,
            "architecture": info.architecture if info else None,
            "quantization": info.quantization if info else None,
            "parameters": info.size_label if info else None,
            "context_length": info.context_length if info else None,
            "error": self.error,
        }


@dataclass
class _Entry:
    """One model as found on disk, before any file is opened."""

    name: str  # relative to models/
    first: Path
    #: part number -> the directory entry (its stat is cached); {1: ...} for a single file
    parts: dict[int, os.DirEntry[str]]
    total: int


# What was already warned about in this process, by path: the tray lists models
# every few seconds, and one odd file is worth one line in the log.
_warned: set[str] = set()


def _warn_once(path: str, why: str) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning("skipped %s: %s", path, why)


def _walk(models_dir: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(name relative to models/, entry) of every .gguf file, folders first-to-last
    in name order as os.walk goes. scandir, not os.walk + pathlib: its entries
    carry the file type and stat, which keeps a list of 1,000 models fast.

    Only regular files (and links to them) are models; a dangling link is one
    too (listed as missing: its import was moved away). A FIFO, device or socket
    named ``*.gguf`` is skipped with a warning, never opened, and so is a folder
    that cannot be read: everything else is still listed."""
    stack: list[tuple[str, str]] = [(str(models_dir), "")]
    while stack:
        top, rel = stack.pop()
        try:
            with os.scandir(top) as it:
                found = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            _warn_once(top, exc.strerror or str(exc))
            continue
        subdirs = []
        for entry in found:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows links, as imports link folders too
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append((entry.path, f"{rel}{entry.name}/"))
            elif entry.name.lower().endswith(".gguf"):
                why = _not_a_model_file(entry)
                if why is None:
                    yield rel + entry.name, entry
                else:
                    _warn_once(entry.path, why)
        stack.extend(reversed(subdirs))


def _not_a_model_file(entry: os.DirEntry[str]) -> str | None:
    """Why a ``*.gguf`` directory entry is not a model file, or None when it is one."""
    try:
        if entry.is_file():  # the type scandir read: no system call for a plain file
            return None
        mode = entry.stat().st_mode  # follows a link
    except FileNotFoundError:
        return None if entry.is_symlink() else "it went away"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if stat.S_ISREG(mode) else f"not a regular file ({file_kind(mode)})"


def _entries(models_dir: Path) -> list[_Entry]:
    """The models in models/: the parts of a split model (llama.cpp's gguf-split
    names them ``NAME-00001-of-00003.gguf``) are one entry, named after part 1."""
    entries: list[_Entry] = []
    groups: dict[tuple[str, str, str], _Entry] = {}
    for rel, dirent in _walk(models_dir):
        match = SPLIT_NAME.match(dirent.name)
        if match is None:
            entries.append(_Entry(rel, Path(dirent.path), {1: dirent}, 1))
            continue
        folder = rel[: len(rel) - len(dirent.name)]
        key = (folder, match["stem"], match["total"])
        entry = groups.get(key)
        if entry is None:
            first_name = _first_name(match)
            entry = groups[key] = _Entry(folder + first_name, models_dir / folder / first_name, {},
                                         max(1, int(match["total"])))
            entries.append(entry)
        entry.parts[int(match["part"])] = dirent
    return entries


def _first_name(match: re.Match[str]) -> str:
    return f"{match['stem']}-{1:0{len(match['part'])}d}-of-{match['total']}.gguf"


def split_parts(path: Path) -> list[Path]:
    """The files of the model whose (first) file is ``path`` that exist (or are
    links): itself, or each present part of a split model."""
    match = SPLIT_NAME.match(path.name)
    if match is None:
        return [path]
    total, width = match["total"], len(match["part"])
    parts = [path.with_name(f"{match['stem']}-{i:0{width}d}-of-{total}.gguf")
             for i in range(1, int(total) + 1)]
    return [p for p in parts if p.exists() or p.is_symlink()]


def list_models(
    models_dir: Path, *, read_metadata: bool = True, cache_file: Path | None = None,
    use_cache: bool = True,
) -> list[LocalModel]:
    """Every model in models/, with its header metadata when ``read_metadata``.

    Headers are remembered in ``cache_file`` (default: ``cache/models.json`` in
    the data home, next to models/) by path, size and modification time, so a
    list after the first opens no GGUF file that has not changed."""
    cache = None
    if read_metadata and use_cache:
        cache = MetadataCache(cache_file or default_cache_file(models_dir))
    models = [_model(e, read_metadata, cache) for e in _entries(models_dir)]
    if cache is not None:
        cache.save()
    return models


def _model(entry: _Entry, read: bool, cache: MetadataCache | None) -> LocalModel:
    stats: dict[int, os.stat_result] = {}
    for number, dirent in entry.parts.items():
        try:
            stats[number] = dirent.stat()
        except OSError:  # a dangling link: the imported file was moved away
            pass
    first = entry.first
    first_dirent = entry.parts.get(1)
    model = LocalModel(
        entry.name, first, sum(st.st_size for st in stats.values()),
        parts=[first] if entry.total == 1 else [Path(entry.parts[i].path) for i in sorted(entry.parts)],
        linked=bool(first_dirent and first_dirent.is_symlink()),
    )
    missing = [i for i in range(1, entry.total + 1) if i not in stats]
    if missing:
        model.error = "file is missing" if entry.total == 1 else _missing_parts(missing, entry.total)
    if read and 1 in stats:
        if cache is not None:
            model.info, error = cache.read(first, stats[1])
        else:
            model.info, error = read_header_or_error(first)
        if model.info is not None:
            # Cheap, and what llama.cpp would refuse only when loading: a file cut
            # short (an interrupted copy) still has a good header.
            error = error or model.info.truncation(stats[1].st_size)
        model.error = model.error or error
    return model


def _missing_parts(missing: list[int], total: int) -> str:
    shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
    return f"missing part{'s' if len(missing) > 1 else ''} {shown} of {total}"


#: Summary headers read in this process, by path, while size and modification
#: time stay: the API asks per request which kind of model it was named, and
#: walking a 262k-token vocabulary to the header's end takes ~50 ms.
_summaries: dict[str, tuple[tuple[int, int], GGUFInfo | None, str | None]] = {}
_SUMMARIES_KEPT = 64


def read_header_or_error(path: Path) -> tuple[GGUFInfo | None, str | None]:
    """The summary header a model list shows (tokenizer arrays skipped), or why not."""
    try:
        st = os.stat(path)
    except OSError:
        st = None  # read_gguf says why, in its own words
    key = str(path)
    if st is not None and stat.S_ISREG(st.st_mode):
        seen = _summaries.get(key)
        if seen is not None and seen[0] == (st.st_size, st.st_mtime_ns):
            return seen[1], seen[2]
    try:
        info, error = read_gguf(path, summary=True), None
    except GGUFError as exc:
        info, error = None, str(exc)
    if st is not None and stat.S_ISREG(st.st_mode):
        if len(_summaries) >= _SUMMARIES_KEPT:
            _summaries.pop(next(iter(_summaries)), None)
        _summaries[key] = ((st.st_size, st.st_mtime_ns), info, error)
    return info, error


def model_name(path: Path, models_dir: Path) -> str:
    """How a model is named in config.toml and the CLI: its path in models/
    (forward slashes), or its absolute path when it lives elsewhere."""
    for p, base in ((path, models_dir), (path.absolute(), models_dir.absolute())):
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path.absolute())


def resolve_model(ref: str, models_dir: Path) -> Path:
    """A path, a name in models/, or a unique case-insensitive part of one.
    A split model resolves to its first part, whichever part is named."""
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return _first_part(candidate.absolute())
    entries = _entries(models_dir)
    # The name models list shows is the model's identity; a bare file name (what
    # older chats and configs stored) is only a match while no other folder has
    # a file of that name too.
    by_file: list[_Entry] = []
    for entry in entries:
        folder = entry.name[: len(entry.name) - len(entry.first.name)]
        if ref == entry.name or any(ref == folder + d.name for d in entry.parts.values()):
            return entry.first
        if any(ref in (d.name, d.name[:-5]) for d in entry.parts.values()):
            by_file.append(entry)
    needle = ref.lower()
    matches = by_file or [e for e in entries if needle in e.name.lower()]
    if len(matches) == 1:
        return matches[0].first
    if not matches:
        if not entries:
            raise ModelNotFound(f"no model matches '{ref}' (models/ is empty; see 'rmm-tray models import')")
        raise ModelNotFound(f"no model matches '{ref}'; see 'rmm-tray models list'")
    shown = ", ".join(sorted(e.name for e in matches)[:5])
    raise ModelNotFound(f"'{ref}' matches {len(matches)} models ({shown}); be more specific")


def _first_part(path: Path) -> Path:
    match = SPLIT_NAME.match(path.name)
    return path if match is None else path.with_name(_first_name(match))


def exact_model(ref: str, models_dir: Path) -> Path:
    """The model named exactly ``ref``, as ``models list`` shows it (its path in
    models/, forward slashes; a split model by its first part), for what must not
    guess: deleting, and loading what the popup asks for. A path, a part of a name
    or anything that leads out of models/ is refused with a one-line ModelNotFound
    that says how to name it."""
    entries = _entries(models_dir)
    for entry in entries:
        if entry.name == ref:
            _check_inside(entry.first, models_dir, ref)
            return entry.first
    raise ModelNotFound(_not_exact(ref, models_dir, entries))


def _looks_like_path(ref: str) -> bool:
    parts = ref.replace("\\", "/").split("/")
    return (os.path.isabs(ref) or ref.startswith("~") or "\\" in ref
            or any(p in (".", "..") for p in parts) or "" in parts[:-1])


def _not_exact(ref: str, models_dir: Path, entries: list[_Entry]) -> str:
    """Why ``ref`` names no model, and the name to use where one is clear."""
    names = {e.name for e in entries}
    if _looks_like_path(ref):
        guess = None
        try:
            real = Path(os.path.realpath(Path(ref).expanduser()))
            guess = real.relative_to(os.path.realpath(models_dir)).as_posix()
        except (OSError, ValueError):
            pass
        tail = f": '{guess}'" if guess in names else ""
        return f"'{ref}' is a path, not a model's name; {NAME_HINT}{tail}"
    needle = ref.lower()
    matches = sorted(e.name for e in entries if needle and (
        needle in e.name.lower()
        or any(ref in (d.name, d.name[:-5]) for d in e.parts.values())))
    if len(matches) == 1:
        return f"no model named '{ref}' in models/; {NAME_HINT}: '{matches[0]}'"
    if matches:
        shown = ", ".join(matches[:3]) + (", ..." if len(matches) > 3 else "")
        return f"no model named '{ref}' in models/; {NAME_HINT} ({len(matches)} match: {shown})"
    return f"no model named '{ref}' in models/; see 'rmm-tray models list'"


def _check_inside(path: Path, models_dir: Path, ref: str) -> None:
    """A name found by the walk can still lead out of models/: the walk follows a
    linked folder. The folder holding the model (its file may be a link; deleting
    that removes only the link) must resolve to a place inside models/."""
    root = os.path.realpath(models_dir)
    folder = os.path.realpath(path.parent)
    if folder != root and not folder.startswith(root.rstrip(os.sep) + os.sep):
        raise ModelNotFound(f"'{ref}' is in a folder linked from outside models/ ({folder}); "
                            "it is left alone")


def remove_model(ref: str, models_dir: Path) -> Path:
    """Delete the model named exactly ``ref`` (see ``exact_model``) from models/,
    every part of a split one. A linked import loses only its link."""
    path = exact_model(ref, models_dir)
    for part in split_parts(path):
        part.unlink()
    return path


def default_model(models_dir: Path, configured: str) -> Path:
    if configured:
        return resolve_model(configured, models_dir)
    # The first model in walk order; stop there rather than list them all.
    for _rel_name, dirent in _walk(models_dir):
        return _first_part(Path(dirent.path))
    raise ModelNotFound("no models yet: 'rmm-tray models import PATH' adds a GGUF file")


def file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode), links followed; None for a missing file or a dangling link."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def file_ids(models_dir: Path) -> set[tuple[int, int]]:
    """The ``file_id`` of every file in models/: a GGUF found elsewhere with one of
    these is already imported, by a symlink or a hard link."""
    ids: set[tuple[int, int]] = set()
    for root, _dirs, files in os.walk(models_dir, followlinks=True):
        for name in files:
            ident = file_id(Path(root) / name)
            if ident is not None:
                ids.add(ident)
    return ids


def remove_empty_dirs(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents up to (not including) ``root`` while they
    are empty: what a deleted or finished download leaves behind."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone
            return
        folder = folder.parent
