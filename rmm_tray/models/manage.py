"""What the CLI and the popup do to local models: details, default, per-model
settings, delete, and whether a model (local or still remote) fits this machine.

Functions take the App so that both front ends share one behaviour; the ones
that change config.toml also refresh ``app.config``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.home.config import MODEL_SETTING_KEYS
from rmm_tray.home.config_edit import forget_model, set_default_model, update_model_settings
from rmm_tray.models.fit import Candidate, Fit, fit_local, fit_remote, machine_memory, parameters_from_size
from rmm_tray.models.fit import recommend as _recommend
from rmm_tray.models.gguf import GGUFInfo, read_gguf
from rmm_tray.models.starter import STARTER_FILE
from rmm_tray.models.store import (
    SPLIT_NAME,
    ModelNotFound,
    default_model,
    exact_model,
    remove_empty_dirs,
    remove_model,
    resolve_model,
    split_parts,
)

if TYPE_CHECKING:
    from rmm_tray.app import App

log = logging.getLogger(__name__)

#: How long a delete waits for the engine to finish a reply and let go of the model.
UNLOAD_TIMEOUT_S = 60.0


def _memory(app: "App") -> tuple[int, int]:
    return machine_memory(int(app.config["model"]["gpu_layers"]))


def remote_fit(app: "App", size: int, quantization: str, context_length: int | None = None) -> Fit:
    """Whether a remote file of ``size`` bytes at ``quantization`` would fit, at
    ``context_length`` (default: the configured one). Always an estimate."""
    ram, vram = _memory(app)
    n_ctx = context_length or int(app.config["model"]["context_length"])
    return fit_remote(size, quantization, n_ctx, ram=ram, vram=vram)


def local_fit(app: "App", name: str, info: GGUFInfo, size: int) -> Fit:
    """Whether a local model fits at the context and GPU offload it loads with
    (its own settings over [model])."""
    ram, vram = machine_memory(int(app.config.model_value(name, "gpu_layers")))
    return fit_local(info, size, int(app.config.model_value(name, "context_length")), ram=ram, vram=vram)


def recommend(app: "App", files: Iterable[Candidate], context_length: int | None = None) -> Candidate | None:
    """The file of a repository to suggest on this machine (see ``fit.recommend``)."""
    ram, vram = _memory(app)
    n_ctx = context_length or int(app.config["model"]["context_length"])
    return _recommend(list(files), n_ctx, ram=ram, vram=vram)


def import_folders(app: "App") -> dict[str, str]:
    """The folders of models/ that sources import into, with where such a model
    came from ("lmstudio": "LM Studio"), as the sources declare them."""
    folders: dict[str, str] = {}
    for source in app.sources():
        for folder, label in source.folders.items():
            folders.setdefault(folder, label)
    return folders


def origin(path: Path, name: str, folders: Mapping[str, str]) -> dict[str, str]:
    """Where a model came from, as far as the disk tells: a link names its
    target; hub downloads land in models/<owner>/<repo>/<file>; imports from
    other apps in one of ``folders`` (see ``import_folders``)."""
    segments = name.split("/")
    app = folders.get(segments[0]) if len(segments) >= 2 else None
    if path.is_symlink():
        target = os.path.realpath(path)
        return {"kind": "linked", "target": target,
                "label": f"linked: {target}" + (f" (from {app})" if app else "")}
    if app:
        return {"kind": "imported", "app": segments[0], "label": f"copied from {app}"}
    if len(segments) >= 3:
        repo = "/".join(segments[:2])
        return {"kind": "huggingface", "repo": repo, "label": f"huggingface: {repo}"}
    if name == STARTER_FILE:
        return {"kind": "starter", "label": "the bundled starter model"}
    return {"kind": "local", "label": "copied into models/"}


def _params_label(n: int) -> str:
    return f"~{n / 1e9:.1f}B" if n >= 1e9 else f"~{n / 1e6:.0f}M"


def model_info(app: "App", ref: str) -> dict[str, Any]:
    """Everything about one local model; raises ModelNotFound or GGUFError (one line)."""
    path = resolve_model(ref, app.home.models)
    name = app.model_name(path)
    parts = split_parts(path)
    sizes = [p.stat().st_size for p in parts if p.exists()]
    size = sum(sizes)
    error = None
    match = SPLIT_NAME.match(path.name)
    if match and len(sizes) < int(match["total"]):
        error = f"{int(match['total']) - len(sizes)} of {int(match['total'])} parts are missing"
    # Arrays before the tokenizer are small and carry per-layer head counts.
    info = read_gguf(path, keep_arrays=True, summary=True)
    settings = app.config.model_settings(name)
    effective = {key: app.config.model_value(name, key) for key in MODEL_SETTING_KEYS}
    fit = local_fit(app, name, info, size)
    params, estimated = info.size_label, False
    if not params:
        count = parameters_from_size(size, info.quantization)
        params, estimated = (_params_label(count), True) if count else ("", False)
    try:
        is_default = app.default_model() == path
    except ModelNotFound:
        is_default = False
    loaded = app.loaded
    return {
        "name": name,
        "path": str(path),
        "size": size,
        "parts": len(parts),
        "quantization": info.quantization,
        "architecture": info.architecture,
        "parameters": params,
        "parameters_estimated": estimated,
        "context_length": info.context_length,
        "layers": info.arch_key("block_count"),
        "origin": origin(path, name, import_folders(app)),
        "settings": settings,
        "effective": effective,
        "default": is_default,
        "loaded": bool(loaded and loaded.path == path),
        "fit": fit.to_dict(),
        "error": error,
    }


def set_default(app: "App", ref: str) -> str:
    """Make ``ref`` the model loaded on first use; returns its name."""
    name = app.model_name(resolve_model(ref, app.home.models))
    app.config = set_default_model(app.home.config_file, name)
    return name


def set_settings(
    app: "App", ref: str, values: Mapping[str, Any], *, unset: tuple[str, ...] = (),
    reset: bool = False,
) -> dict[str, Any]:
    """Change a model's own settings (``reset``: drop them all first); returns them.
    Raises ConfigError for an unknown key or a value of the wrong type. A loaded
    model picks up new engine settings on its next reply (it is reloaded)."""
    from rmm_tray.models.settings import checked_setting

    name = app.model_name(resolve_model(ref, app.home.models))
    values = {key: checked_setting(key, value) for key, value in values.items()}
    app.config = update_model_settings(app.home.config_file, name, values, unset=unset, reset=reset)
    return app.config.model_settings(name)


def model_settings(app: "App", ref: str) -> dict[str, Any]:
    """A model's own settings (empty: it follows [model] and [generation])."""
    return app.config.model_settings(app.model_name(resolve_model(ref, app.home.models)))


def pin_default(app: "App") -> None:
    """Before a model arrives: while no default is chosen, the first model by name
    is the one in effect; remember it, so that a new one cannot take its place
    just by sorting first. Nothing to do while models/ is empty (the first model
    ever becomes the default: see ``first_default``)."""
    if str(app.config["model"]["default"]):
        return
    try:
        path = default_model(app.home.models, "")
    except ModelNotFound:
        return
    app.config = set_default_model(app.home.config_file, app.model_name(path))


def first_default(app: "App", added: list[Path]) -> None:
    """After models arrived: with still no default (models/ was empty), the first
    of them is it, and config.toml says so."""
    if added and not str(app.config["model"]["default"]):
        app.config = set_default_model(app.home.config_file, app.model_name(added[0]))


def delete_model(app: "App", ref: str) -> Path:
    """Remove the model named exactly ``ref`` (as ``models list`` shows it: a path
    or a part of a name is refused, see ``exact_model``) from models/, unloading it
    first if it is the loaded one; the folders it leaves empty, its settings and
    its place as the default go too."""
    path = exact_model(ref, app.home.models)
    name = app.model_name(path)
    configured = str(app.config["model"]["default"])
    try:
        was_default = bool(configured) and resolve_model(configured, app.home.models) == path
    except ModelNotFound:
        was_default = False
    loaded = app.loaded
    if loaded is not None and loaded.path == path:
        # The engine finishes (or is cancelled out of) a reply first: it owns the model.
        app.engine.unload().result(timeout=UNLOAD_TIMEOUT_S)
    removed = remove_model(name, app.home.models)
    remove_empty_dirs(removed.parent, app.home.models)
    if name in app.config.data.get("models", {}) or was_default:
        app.config = forget_model(app.home.config_file, name, clear_default=was_default)
    return removed
