"""CLI start-up: a command imports what it uses and no more, and every public
name of the plugin API still imports. The time itself is in bench/history.py."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import rmm_tray
from rmm_tray.cli import COMMANDS, _wanted_modules, build_parser

REPO = Path(__file__).resolve().parent.parent

# Runs a command line in a fresh interpreter and prints, after its own output,
# the modules it imported: what a person's `rmm-tray ...` pays for.
PROBE = """
import json, sys
from rmm_tray.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def probe(home: Path, *args: str) -> tuple[int, list[str], set[str]]:
    run = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         timeout=120, cwd=REPO, env={"RMM_HOME": str(home), "PATH": "/usr/bin:/bin",
                                                     "HF_HUB_OFFLINE": "1"})
    *printed, last = run.stdout.splitlines()
    report = json.loads(last)
    return report["code"], printed, set(report["modules"])


def sqlite_home(home: Path) -> Path:
    (home / "config.toml").write_text('[history]\nbackend = "sqlite"\n')
    (home / "state.json").write_text('{"starter_installed": "x"}\n')  # no starter copy
    from rmm_tray import ChatMessage
    from rmm_tray.plugins.history_sqlite import DB_NAME, SqliteHistory

    db = SqliteHistory(home / DB_NAME)
    chat_id = db.create_chat(title="a trip", model=None, source="cli")
    db.append_message(chat_id, ChatMessage("user", "where does the quetzal live?"))
    db.close()
    return home


# What `chats search` has no use for: other commands, templates and prompts,
# model sources, the other plugins, the engine, entry-point metadata.
NOT_FOR_SEARCH = {
    "rmm_tray.cli.chat_cmd", "rmm_tray.cli.serve_cmd", "rmm_tray.cli.doctor_cmd",
    "rmm_tray.cli.prompts_cmd", "rmm_tray.cli.models_cmd", "rmm_tray.chat.templates",
    "rmm_tray.chat.prompt_model", "rmm_tray.models.sources", "rmm_tray.plugins.builtin_templates",
    "rmm_tray.plugins.hf_hub", "rmm_tray.plugins.history_jsonl", "rmm_tray.engine",
    "importlib.metadata", "llama_cpp", "tomlkit",
}


@pytest.mark.integration
def test_chats_search_finds_the_chat_and_imports_only_what_it_needs(home: Path) -> None:
    code, printed, modules = probe(sqlite_home(home), "chats", "search", "quetzal")
    assert code == 0
    assert "a trip" in printed[0] and "quetzal" in printed[1]
    assert "rmm_tray.plugins.history_sqlite" in modules
    assert sorted(modules & NOT_FOR_SEARCH) == []


@pytest.mark.integration
def test_version_imports_no_command(home: Path) -> None:
    run = subprocess.run([sys.executable, "-c", "import sys; from rmm_tray.cli import main\n"
                          "try: main(['--version'])\n"
                          "except SystemExit: print(sorted(m for m in sys.modules if 'rmm_tray.' in m))"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.stdout.startswith("rmm-tray 0.1.0\n")
    assert eval(run.stdout.splitlines()[1]) == ["rmm_tray.cli"]


@pytest.mark.integration
def test_a_backend_not_first_party_still_comes_from_a_full_plugin_load(home: Path) -> None:
    (home / "plugins" / "notes_history.py").write_text(
        "from rmm_tray import hookimpl\n"
        "from rmm_tray.plugins.history_jsonl import JsonlHistory\n"
        "class Notes(JsonlHistory):\n    name = 'notes'\n"
        "@hookimpl\ndef register_history_backends(register, app):\n"
        "    register(Notes(app.home.root / 'chats'))\n")
    (home / "config.toml").write_text('[history]\nbackend = "notes"\n')
    (home / "state.json").write_text('{"starter_installed": "x"}\n')
    code, printed, modules = probe(home, "chats", "list")
    assert code == 0
    assert "rmm_tray.plugins.builtin_templates" in modules  # every plugin loaded


def test_every_public_name_imports_lazily() -> None:
    for name in rmm_tray.__all__:
        assert getattr(rmm_tray, name) is not None, name
    assert set(rmm_tray.__all__) <= set(dir(rmm_tray))
    namespace: dict[str, object] = {}
    exec("from rmm_tray import HistoryBackend, hookimpl, PromptTemplate", namespace)
    from rmm_tray.chat.history import HistoryBackend

    assert namespace["HistoryBackend"] is HistoryBackend
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = rmm_tray.Nope  # type: ignore[attr-defined]


def test_the_command_table_names_every_command_of_each_module() -> None:
    for module_name in set(COMMANDS.values()):
        module = importlib.import_module(f"rmm_tray.cli.{module_name}")
        sub = argparse.ArgumentParser().add_subparsers()
        (getattr(module, "add_parser", None) or module.add_parsers)(sub)
        assert {c for c, m in COMMANDS.items() if m == module_name} == set(sub.choices), module_name


def test_only_the_named_command_is_built() -> None:
    assert _wanted_modules(["--debug", "chats", "search", "x"]) == ["chats_cmd"]
    assert _wanted_modules(["--version"]) == []
    every = list(dict.fromkeys(COMMANDS.values()))
    assert _wanted_modules(["--help"]) == every and _wanted_modules(["-h"]) == every
    assert _wanted_modules(["chast"]) == every  # argparse's error lists every choice
    assert _wanted_modules(["-h", "chats"]) == every  # the top level's help
    assert _wanted_modules(["chats", "--help"]) == ["chats_cmd"]  # the command's own


def test_help_and_a_typo_still_list_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(["-h"]).parse_args(["-h"])
    shown = capsys.readouterr().out
    assert all(name in shown for name in COMMANDS)
    with pytest.raises(SystemExit):
        build_parser(["chast"]).parse_args(["chast"])
    assert "invalid choice: 'chast'" in capsys.readouterr().err
