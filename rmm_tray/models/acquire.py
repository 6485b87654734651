"""How a model gets into models/, the same for the CLI and the popup: the remote
catalogue and which of a repository's files to pull, the GGUF files other apps
left on this computer, and importing one of them (or any path).

Downloads themselves run in ``models.downloads``; this module decides what to
download and hands the source and file over.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.errors import RmmError
from rmm_tray.models.fit import quant_of
from rmm_tray.models.manage import first_default, pin_default, recommend, remote_fit
from rmm_tray.models.store import ModelNotFound, file_id, file_ids

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.models.sources import ModelSource, RemoteModelFile, RemoteRepoDetails

log = logging.getLogger(__name__)


def catalogue(app: "App") -> "ModelSource":
    """The remote catalogue to search and pull from (the first source that is one)."""
    for source in app.remote_sources():
        return source
    raise RmmError("no model catalogue is available (the Hugging Face plugin did not load; "
                   "see 'rmm-tray plugins')")


def pick_file(app: "App", details: "RemoteRepoDetails", wanted: str = "") -> "RemoteModelFile":
    """A file of a repository by its name, by its quantization (``Q4_K_M``, any case),
    or, when nothing is asked for, the one recommended for this machine."""
    files = list(details.files)
    if not files:
        raise RmmError(f"{details.id} has no GGUF model files")
    if wanted:
        by_name = [f for f in files if wanted in (f.name, f.name.rsplit("/", 1)[-1])]
        by_quant = [f for f in files if f.quantization.lower() == wanted.lower()]
        matches = by_name or by_quant
        if len(matches) == 1:
            return matches[0]
        choices = ", ".join(sorted({f.quantization or f.name for f in files}))
        if not matches:
            raise ModelNotFound(f"{details.id} has no file or quantization '{wanted}' (has: {choices})")
        names = ", ".join(f.name for f in matches)
        raise RmmError(f"'{wanted}' matches several files in {details.id} ({names}); name the file")
    if len(files) == 1:
        return files[0]
    best = recommend(app, files)
    if best is None:
        raise RmmError(f"no file in {details.id} fits this machine's memory; pick one with "
                       f"REPO:QUANT (see 'rmm-tray models files {details.id}')")
    return best


def pull_target(app: "App", ref: str) -> tuple["ModelSource", "RemoteModelFile"]:
    """``REPO``, ``REPO:QUANT`` or ``REPO:FILE`` → the source and the file to download.
    A download must not change which model is the default either (see ``pin_default``)."""
    repo_id, _, wanted = ref.partition(":")
    source = catalogue(app)
    file = pick_file(app, source.repo(repo_id), wanted)
    pin_default(app)
    return source, file


def repo_files(app: "App", details: "RemoteRepoDetails") -> list[dict[str, Any]]:
    """A repository's files as both front ends list them: quantization, size, parts,
    fit on this machine ("fits", "tight", "too big"), the recommended one and the
    name each will have in models/. The fit is a nicety: when it cannot be
    estimated the files still show, without a verdict."""
    files = list(details.files)
    try:
        verdicts = [remote_fit(app, f.size, quant_of(f)).verdict for f in files]
        best = recommend(app, files)
    except Exception as exc:
        log.warning("no fit estimate: %s", exc)
        verdicts, best = [""] * len(files), None
    return [{"name": f.name, "quantization": quant_of(f), "size": f.size, "parts": len(f.parts),
             "fit": verdict, "recommended": f is best, "local_name": local_name(details.id, f.name)}
            for f, verdict in zip(files, verdicts)]


def local_name(repo_id: str, filename: str) -> str:
    """Where a downloaded file shows up in the model list (models/owner/repo/file)."""
    return f"{repo_id}/{filename}"


def discover(app: "App") -> list[dict[str, Any]]:
    """GGUF files other apps downloaded, each with whether it is already imported."""
    found = []
    labels: dict[str, str] = {}
    for source in app.sources():
        labels.setdefault(source.name, source.label or source.name)
        try:  # a source is a plugin: one that fails costs only its own entries
            found += source.discover()
        except Exception as exc:
            log.warning("model source %s: discover failed: %s", source.name or type(source).__name__, exc)
    ids = file_ids(app.home.models)
    return [{"name": c.name, "size": c.size, "source": c.source, "label": labels.get(c.source, c.source),
             "path": str(c.path), "imported": file_id(c.path) in ids} for c in found]


def import_model(app: "App", ref: str, *, copy: bool = False) -> list[Path]:
    """Bring a path, a folder of GGUF files or a name ``discover`` lists into models/
    (linked unless ``copy``); returns the paths added. The default model stays what
    it was; the first model ever imported becomes it."""
    for source in app.sources():
        if source.handles(ref):
            pin_default(app)
            added = source.fetch(ref, app.home.models, copy=copy)
            first_default(app, added)
            return added
    raise ModelNotFound(f"No such file or folder, and no model source knows '{ref}'")
