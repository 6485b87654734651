"""bench/prompts.py stays runnable and prints every figure. Nothing here judges speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.desktop, pytest.mark.slow]


def test_prompts_benchmark_quick_run_prints_its_table(tmp_path: Path, starter_model: Path) -> None:
    out = tmp_path / "prompts.json"
    result = subprocess.run([sys.executable, "bench/prompts.py", "--quick", "--json", str(out)],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    for row in ("Keystroke → preview + count", "Prompt hotkey → form with the selection filled",
                "`prompts list`, 1000 prompts", "Prompts view, Ctrl+P → 1000 listed"):
        assert row in result.stdout
    data = json.loads(out.read_text())
    assert data["keystroke_ms"] and data["hotkey_form_ms"] and data["listing"]["view_ms"]
    assert 1500 < data["core"]["tokens"] < 3000
