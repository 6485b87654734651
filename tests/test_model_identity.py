"""A model is named everywhere by its path in models/: two repositories that both
ship a file of the same name stay two models in the list, the picker, the engine's
events and the chats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Page, json_lines, run_cli
from rmm_tray.app import App
from rmm_tray.desktop.chat_controller import ChatController
from rmm_tray.models.store import ModelNotFound, resolve_model

FILE = "same-Q4_K_M.gguf"
STARTER = "gemma-3-270m-q4_k_m.gguf"  # a new data home gets the starter model too
NAMES = [f"alice/tiny-GGUF/{FILE}", f"bob/tiny-GGUF/{FILE}"]


@pytest.fixture()
def twins(home: Path, starter_model: Path) -> Path:
    for name in NAMES:
        path = home / "models" / name
        path.parent.mkdir(parents=True)
        path.symlink_to(starter_model)
    return home


@pytest.mark.integration
def test_the_list_and_the_picker_keep_them_apart(twins: Path) -> None:
    listed = json.loads(run_cli("models", "list", "--json").stdout)
    assert sorted(m["name"] for m in listed if m["name"] != STARTER) == NAMES
    app = App.open()
    try:
        assert sorted(n for n in ChatController(app, Page()).models() if n != STARTER) == NAMES
    finally:
        app.close()


@pytest.mark.integration
def test_a_bare_file_name_is_ambiguous_not_the_first_one(twins: Path) -> None:
    models = twins / "models"
    assert resolve_model(NAMES[1], models) == models / NAMES[1]
    with pytest.raises(ModelNotFound, match="matches 2 models"):
        resolve_model(FILE, models)
    result = run_cli("chat", "-m", FILE, "Hello")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"rmm-tray: error: '{FILE}' matches 2 models ({NAMES[0]}, {NAMES[1]}); be more specific")


def test_an_old_bare_name_still_finds_a_model_that_is_unique(home: Path, starter_model: Path) -> None:
    path = home / "models" / "alice" / "tiny-GGUF" / FILE
    path.parent.mkdir(parents=True)
    path.symlink_to(starter_model)
    assert resolve_model(FILE, home / "models") == path


@pytest.mark.integration
@pytest.mark.slow
def test_chats_and_the_engine_name_the_model_by_its_path(twins: Path) -> None:
    for name in NAMES:
        result = run_cli("chat", "--json", "-m", name, "--max-tokens", "4", "Hello")
        assert result.returncode == 0, result.stderr
        done = json_lines(result.stdout)[-1]
        assert done["type"] == "done" and done["model"] == name
    chats = json.loads(run_cli("chats", "list", "--json").stdout)
    assert len(chats) == 2
    assert sorted(c["model"] for c in chats) == NAMES
    for c in chats:
        shown = json.loads(run_cli("chats", "show", c["id"], "--json").stdout)
        replies = [m for m in shown["messages"] if m["role"] == "assistant"]
        assert replies and all(m["model"] == c["model"] for m in replies)


@pytest.mark.integration
def test_a_chat_that_stored_only_a_file_name_still_opens(home: Path) -> None:
    chat_id = "20250101-120000-abcdef"
    (home / "chats" / f"{chat_id}.jsonl").write_text(
        json.dumps({"type": "chat", "id": chat_id, "title": "old", "created": 1735732800.0,
                    "model": FILE}) + "\n"
        + json.dumps({"type": "message", "role": "user", "content": "Hi", "id": "u1",
                      "created": 1735732800.0}) + "\n")
    shown = run_cli("chats", "show", chat_id, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["model"] == FILE and [m["content"] for m in data["messages"]] == ["Hi"]
