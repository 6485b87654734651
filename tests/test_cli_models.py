"""`models`, `prompts`, `doctor` and first-start behaviour through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration


def test_first_start_installs_the_starter_model_and_config(home: Path) -> None:
    result = run_cli("models", "list", "--json")
    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout)
    assert [m["name"] for m in models] == ["gemma-3-270m-q4_k_m.gguf"]
    m = models[0]
    assert (m["architecture"], m["quantization"], m["context_length"], m["default"]) == (
        "gemma3", "Q4_K_M", 32768, True)
    assert not (home / "models" / "gemma-3-270m-q4_k_m.gguf").is_symlink()
    assert "[model]" in (home / "config.toml").read_text()


def test_import_links_and_rm_unlinks(home: Path, starter_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "mine-q8_0.gguf").symlink_to(starter_model)
    result = run_cli("models", "import", str(folder))
    assert result.returncode == 0, result.stderr
    assert "linked mine-q8_0.gguf" in result.stdout
    assert (home / "models" / "mine-q8_0.gguf").is_symlink()
    table = run_cli("models", "list").stdout
    assert "mine-q8_0.gguf" in table and "linked" in table

    again = run_cli("models", "import", str(folder / "mine-q8_0.gguf"))
    assert again.returncode == 1 and "already in models/" in again.stderr

    copied = run_cli("models", "import", "--copy", str(starter_model))
    assert copied.returncode == 1, "the starter model is already there under this name"

    removed = run_cli("models", "rm", "mine-q8_0.gguf")  # rm takes the name as listed
    assert removed.returncode == 0 and "removed mine-q8_0.gguf" in removed.stdout
    assert starter_model.exists()


def test_import_refuses_what_is_not_gguf(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "photo.gguf"
    bad.write_bytes(b"\x89PNG....")
    result = run_cli("models", "import", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip() == "rmm-tray: error: photo.gguf is not a GGUF file"
    assert not (home / "models" / "photo.gguf").exists()
    missing = run_cli("models", "import", str(tmp_path / "nope.gguf"))
    assert missing.returncode == 1 and "No such file" in missing.stderr


def test_broken_model_file_via_cli_is_one_line(home: Path, tmp_path: Path) -> None:
    (home / "models" / "broken.gguf").write_text("not really")
    result = run_cli("chat", "-m", "broken", "hi")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "rmm-tray: error: broken.gguf: not a GGUF file"]
    listed = run_cli("models", "list")
    assert listed.returncode == 0 and "not a GGUF file" in listed.stdout


def test_prompts_from_the_prompts_folder_override_plugins(home: Path) -> None:
    (home / "prompts" / "summarize.toml").write_text(
        'description = "mine"\nbody = "TL;DR: {{input}}"\n')
    listed = {t["name"]: t for t in json.loads(run_cli("prompts", "list", "--json").stdout)}
    assert listed["summarize"]["source"] == "prompts folder"
    assert listed["translate"]["source"] == "builtin_templates"
    shown = run_cli("prompts", "show", "summarize")
    assert "TL;DR: {{input}}" in shown.stdout
    missing = run_cli("prompts", "show", "nonesuch")
    assert missing.returncode == 1 and "no prompt template 'nonesuch'" in missing.stderr


def test_broken_config_is_reported_not_replaced(home: Path) -> None:
    (home / "config.toml").write_text("[model\n")
    result = run_cli("models", "list")
    assert result.returncode == 1 and result.stderr.startswith("rmm-tray: error: config.toml:")
    assert (home / "config.toml").read_text() == "[model\n"


def test_doctor_reports_each_piece(home: Path) -> None:
    result = run_cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    for name in ("python", "llama-cpp-python", "PyGObject", "session", "data home", "models"):
        assert name in checks
    assert "GPU offload" in checks["llama-cpp-python"]["detail"]
    assert checks["data home"]["detail"] == str(home)
    assert all(c["fix"] for c in checks.values() if c["status"] == "fail")
    assert run_cli("doctor").stdout.count("\n") >= len(checks)


def test_doctor_says_where_downloads_go(home: Path) -> None:
    (home / "config.toml").write_text('[hub]\nendpoint = "http://mirror.example"\ntoken = "hf_x"\n')
    hub = {c["name"]: c for c in json.loads(run_cli("doctor", "--json").stdout)["checks"]}["hub"]
    assert (hub["status"], hub["detail"]) == ("ok", "http://mirror.example; token: config.toml")
    offline = run_cli("doctor", env={"HF_HUB_OFFLINE": "1"}).stdout
    assert "offline (HF_HUB_OFFLINE)" in offline and "unset HF_HUB_OFFLINE" in offline


def test_unknown_chat_is_one_line(home: Path) -> None:
    result = run_cli("chats", "show", "20990101-000000-abcdef")
    assert result.returncode == 1
    assert result.stderr.strip() == "rmm-tray: error: no chat '20990101-000000-abcdef'"
