"""The installed wheel, and the rules the layout promises."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.integration


def test_wheel_installs_core_plugins_and_web_but_no_top_level_plugins(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(REPO)],
        check=True, capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("rmm_tray-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rmm_tray/plugins/history_jsonl.py" in names
    for name in ("rmm_tray/web/index.html", "rmm_tray/web/app.js", "rmm_tray/web/style.css",
                 "rmm_tray/shell/popup_process.py", "rmm_tray/engine/worker.py"):
        assert name in names
    assert not any(n.startswith(("plugins/", "web/", "tests/")) for n in names)

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    site = Path(subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    assert (site / "rmm_tray" / "plugins" / "local_folder.py").is_file()
    assert (site / "rmm_tray" / "web" / "index.html").is_file()
    assert not (site / "plugins").exists() and not (site / "web").exists()
    eps = subprocess.run(
        [py, "-c", "import json, importlib.metadata as m;"
         "print(json.dumps({e.name: e.value for e in m.entry_points(group='rmm_tray')}))"],
        check=True, capture_output=True, text=True).stdout
    assert json.loads(eps) == {
        "builtin_templates": "rmm_tray.plugins.builtin_templates",
        "history_jsonl": "rmm_tray.plugins.history_jsonl",
        "local_folder": "rmm_tray.plugins.local_folder",
        "other_apps": "rmm_tray.plugins.other_apps",
        "huggingface": "rmm_tray.plugins.hf_hub",
        "history_sqlite": "rmm_tray.plugins.history_sqlite",
        "remote_openai": "rmm_tray.plugins.remote_openai",
    }
    assert (env_dir / "bin" / "rmm-tray").exists()


def test_headless_commands_import_no_gui_and_no_llama(home: Path) -> None:
    probe = (
        "import sys, rmm_tray.cli as c\n"
        "for argv in (['--help'], ['models', 'list'], ['prompts', 'list'], ['plugins']):\n"
        "    try:\n"
        "        c.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = [m for m in ('llama_cpp', 'pystray', 'webview', 'pynput') if m in sys.modules]\n"
        "print('LOADED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert "LOADED []" in out


def test_ruff_keeps_gui_toolkits_out_of_the_core() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "rmm_tray", "plugins",
                             "tests", "bench"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout


def test_python_dash_m_works_like_the_script(home: Path) -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("rmm-tray ")
