"""The benchmark stays runnable. It prints figures; nothing here judges speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_engine_benchmark_quick_run_prints_its_table(tmp_path: Path, starter_model: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "bench/engine.py", "--quick", "--model", str(starter_model),
         "--json", str(out)],
        # Some twenty processes, one after another: minutes on a busy 2-core machine.
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| what | rmm-tray | baseline | ratio | target | other CPUs busy |" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    names = " ".join(r["what"] for r in rows)
    for part in ("decode speed", "prompt speed", "TTFT at turn", "model load", "CLI start-up"):
        assert part in names
    assert all(r["rmm_tray"] is not None for r in rows if "CLI" not in r["what"])
    # Each side ran in processes of its own, and each run says how busy the rest was.
    runs = json.loads(out.read_text())["runs"]
    assert {r["side"] for r in runs} == {"engine", "raw"}
    assert all(r["rc"] == 0 and r["token_arrival_s"] for r in runs)


def test_desktop_benchmark_quick_run_prints_its_table(tmp_path: Path, starter_model: Path) -> None:
    out = tmp_path / "desktop.json"
    result = subprocess.run(
        [sys.executable, "bench/desktop.py", "--quick", "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| what | figure | baseline | ratio | target |" in result.stdout
    assert "hotkey" in result.stdout and "launch → tray icon drawn" in result.stdout
    data = json.loads(out.read_text())
    rows = {r["what"]: r for r in data["rows"]}
    whole = next(r for w, r in rows.items() if w.startswith("whole app PSS at rest"))
    assert whole["figure"] and whole["baseline"], "both sides of the popup's tuning were measured"
    assert any(w.startswith("hotkey (XTEST from the bench [tuning off])") for w in rows)
    assert any(w.startswith("weston (headless): `rmm-tray toggle` → popup visible") and r["figure"]
               for w, r in rows.items())


@pytest.mark.desktop
def test_popup_speed_benchmark_times_the_reply_in_the_page(tmp_path: Path, starter_model: Path) -> None:
    out = tmp_path / "popup.json"
    result = subprocess.run(
        [sys.executable, "bench/popup_speed.py", "--rounds", "1", "--tokens", "24", "--model",
         str(starter_model), "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| decode, 24-token reply, 1 rounds |" in result.stdout, result.stdout + result.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    # The page saw the reply arrive in batches, and the raw side made as many tokens.
    assert row["popup"]["batches"] >= 2 and row["popup"]["decode_tok_s"] > 0
    assert row["raw"]["completion_tokens"] == row["popup"]["completion_tokens"]


def test_models_benchmark_quick_run_prints_its_table(tmp_path: Path) -> None:
    out = tmp_path / "models.json"
    result = subprocess.run(
        [sys.executable, "bench/models.py", "--quick", "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| what | figure | ratio to target | target |" in result.stdout
    data = json.loads(out.read_text())
    assert not data["notes"], data["notes"]
    names = " ".join(r["what"] for r in data["rows"])
    for part in ("no metadata cache", "warm cache", "`rmm-tray models list --json`", "start-up"):
        assert part in names
    assert all(r["seconds"] is not None for r in data["rows"])


def test_download_benchmark_quick_run_prints_its_table(tmp_path: Path) -> None:
    out = tmp_path / "hub.json"
    result = subprocess.run(
        [sys.executable, "bench/hub.py", "--quick", "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| what | throughput | ratio to curl | target |" in result.stdout
    rows = {r["what"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["rmm-tray download + sha256 + fsync + move"]["mb_s"] > 0
    assert "rmm-tray download, server throttled to 1 Gbit/s" in rows
