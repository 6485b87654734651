"""bench/api.py stays runnable. It prints figures; nothing here judges speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.mark.timeout(900)
def test_api_benchmark_quick_run_prints_its_figures(tmp_path: Path, starter_model: Path) -> None:
    out = tmp_path / "api.json"
    result = subprocess.run(
        [sys.executable, "bench/api.py", "--quick", "--no-llama-server", "--model", str(starter_model),
         "--json", str(out)], capture_output=True, text=True, cwd=REPO, timeout=850)
    assert result.returncode == 0, result.stderr[-2000:]
    for row in ("API / in process", "time to first token added by the API", "eight / one",
                "slowest of the eight clients", "CPUs other processes kept busy"):
        assert row in result.stdout
    report = json.loads(out.read_text())
    assert report["in_process"]["runs"] and report["api"]["runs"]
    assert all(r["tokens"] > 1 for r in report["api"]["runs"])
    assert report["api"]["eight"]["eight_clients_tok_s"] > 0
