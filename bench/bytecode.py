"""Bytecode cached, as a person's app has it after its first start: Python writes
it beside the sources then. An environment with PYTHONDONTWRITEBYTECODE set (as
on some machines) would make every timed command compile the app's modules
again (~0.05 s of a desktop start here), so the benches that time whole
commands drop it and write the bytecode once, before anything is timed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


_compiled = False


def cached(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (the process's own by default) without PYTHONDONTWRITEBYTECODE,
    the app's modules compiled (once per bench process)."""
    global _compiled
    out = dict(os.environ if env is None else env)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    if not _compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "rmm_tray"),
                        str(REPO / "plugins")], env=out, check=True, timeout=300,
                       stdout=subprocess.DEVNULL)
        _compiled = True
    return out
