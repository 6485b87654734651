"""One way to read and change a setting: `rmm-tray config get|set|edit|path`
and the Settings view share home/config_values, the rules of settings_check,
and the in-place editor that keeps a person's comments."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest

from rmm_tray.cli import main
from rmm_tray.desktop import hotkey_check
from rmm_tray.home import config_values
from rmm_tray.home.config import Config, ConfigError

COMMENTED = textwrap.dedent("""\
    # my own notes on top
    [generation]
    # I like it cold
    temperature = 0.0  # really
    max_tokens = 24

    [ui]
    hotkey = "<ctrl>+<alt>+<space>"
""")


@pytest.fixture()
def cfg(home: Path) -> Path:
    path = home / "config.toml"
    path.write_text(COMMENTED)
    return path


def test_set_keeps_comments_and_checks_each_value(cfg: Path) -> None:
    config = config_values.set_values(cfg, {"generation.temperature": "0.5", "ui.hide_on_blur": True})
    assert config["generation"]["temperature"] == 0.5 and config["ui"]["hide_on_blur"] is True
    text = cfg.read_text()
    assert "# my own notes on top" in text and "# I like it cold" in text and "# really" in text
    assert "temperature = 0.5" in text and "hide_on_blur = true" in text
    assert Config.load(cfg)["generation"]["max_tokens"] == 24


def test_one_bad_value_writes_nothing(cfg: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config_values.set_values(cfg, {"generation.max_tokens": "100", "generation.top_p": "2"})
    assert str(err.value) == "Top P must be between 0 and 1, got '2'"
    assert cfg.read_text() == COMMENTED


@pytest.mark.parametrize(("name", "value", "message"), [
    ("generation.temperature", "warm", "Temperature should be a number, got 'warm'"),
    ("model.context_length", "100", "Context length must be at least 256 tokens, got '100'"),
    ("model.threads", "1.5", "Threads should be a whole number, got '1.5'"),
    ("ui.theme", "pink", "Theme must be system, light or dark, got 'pink'"),
    ("ui.hide_on_blur", "maybe", "Hide when it loses focus should be true or false, got 'maybe'"),
])
def test_bad_values_get_one_line_naming_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_values.from_command_line(name, value)
    assert str(err.value) == message


def test_unknown_names_say_what_there_is() -> None:
    with pytest.raises(ConfigError) as err:
        config_values.split_name("generation.temprature")
    assert "'generation.temprature' is not a setting (have: model.default," in str(err.value)
    with pytest.raises(ConfigError, match="models set NAME"):
        config_values.split_name("models.x")


def test_command_line_values_are_read_as_toml_or_text() -> None:
    assert config_values.from_command_line("ui.hotkey", "<ctrl>+<alt>+k") == "<ctrl>+<alt>+k"
    assert config_values.from_command_line("ui.hotkey", '"<ctrl>+<alt>+k"') == "<ctrl>+<alt>+k"
    assert config_values.from_command_line("model.default", '""') == ""
    assert config_values.from_command_line("ui.hide_on_blur", "true") is True
    assert config_values.from_command_line("generation.top_k", "0") == 0
    assert config_values.from_command_line("plugins.disabled", '["a", "b"]') == ["a", "b"]
    assert config_values.from_command_line("plugins.disabled", "a, b") == ["a", "b"]


def test_cli_config_get_set_path(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(cfg)
    assert main(["config", "set", "generation.temperature", "0.25"]) == 0
    assert capsys.readouterr().out.strip() == "generation.temperature = 0.25"
    assert main(["config", "get", "generation.temperature"]) == 0
    assert capsys.readouterr().out.strip() == "0.25"
    assert "# I like it cold" in cfg.read_text()
    assert main(["config", "set", "history.backend", "jsonl"]) == 0
    assert "applies from the next start" in capsys.readouterr().out
    assert main(["config", "get"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "ui.hotkey = <ctrl>+<alt>+<space>" in lines and "generation.max_tokens = 24" in lines


def test_cli_config_set_refuses_in_one_line(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "set", "generation.top_p", "1.5"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "rmm-tray: error: Top P must be between 0 and 1, got '1.5'"]
    assert cfg.read_text() == COMMENTED


def _editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.sh"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_cli_config_edit_keeps_a_good_edit(cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VISUAL", _editor(tmp_path, "sed -i 's/max_tokens = 24/max_tokens = 99/' \"$1\""))
    assert main(["config", "edit"]) == 0
    assert "max_tokens = 99" in cfg.read_text() and "# I like it cold" in cfg.read_text()
    assert not cfg.with_name("config.toml.edit").exists()


def test_cli_config_edit_never_saves_a_broken_file_nor_loses_it(
        cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VISUAL", _editor(tmp_path, "sed -i 's/max_tokens = 24/max_tokens = -3/' \"$1\""))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["config", "edit"]) == 1
    err = capsys.readouterr().err
    assert "[generation] max_tokens must be at least 1, got -3 (line 5)" in err
    assert cfg.read_text() == COMMENTED, "config.toml is unchanged"
    kept = cfg.with_name("config.toml.edit")
    assert "max_tokens = -3" in kept.read_text(), "what was typed is kept"
    # The next edit starts from the kept draft, so the fix is one change away.
    monkeypatch.setenv("VISUAL", _editor(tmp_path, "sed -i 's/max_tokens = -3/max_tokens = 7/' \"$1\""))
    assert main(["config", "edit"]) == 0
    assert "max_tokens = 7" in cfg.read_text() and not kept.exists()


def test_no_editor_is_a_clear_line(cfg: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.setenv("PATH", str(cfg.parent / "nothing-here"))
    assert main(["config", "edit"]) == 1
    assert capsys.readouterr().err.startswith("rmm-tray: error: no editor found: set $EDITOR")
    assert os.path.exists(cfg)


# -- hotkeys ------------------------------------------------------------------


@pytest.mark.parametrize(("combo", "why"), [
    ("<ctrl>+<alt>+<space>", None),
    ("<cmd>+<shift>+r", None),
    ("<ctrl>+<alt>+<f5>", None),
    ("", "Hotkey is empty"),
    ("a", "Hotkey needs Ctrl, Alt or Super"),
    ("<shift>+a", "Hotkey needs Ctrl, Alt or Super"),
    ("<ctrl>+<alt>", "Hotkey needs a key besides its modifiers"),
    ("<ctrl>+<foo>", "Hotkey: <foo> is not a key name"),
    ("<ctrl>+ab", "Hotkey: 'ab' is not one key"),
    ("<ctrl>+c", "Hotkey Ctrl+C is already Copy"),
    ("<alt>+<ctrl>+<delete>", "Hotkey Alt+Ctrl+Delete is already the system's log-out"),
    ("<ctrl_l>+n", "Hotkey Ctrl L+N is already the popup's New chat"),
])
def test_hotkey_problems(combo: str, why: str | None) -> None:
    found = hotkey_check.problem(combo)
    assert (found is None) if why is None else (found is not None and found.startswith(why)), found


def test_hotkey_clashes_with_the_apps_other_hotkeys() -> None:
    assert hotkey_check.problem("<ctrl>+<alt>+p", {"<alt>+<ctrl>+p": "the prompt 'fix'"}) == \
        "Hotkey Ctrl+Alt+P is already the prompt 'fix'"


def test_hotkey_labels() -> None:
    assert hotkey_check.label("<ctrl>+<alt>+<space>") == "Ctrl+Alt+Space"
    assert hotkey_check.label("<cmd>+<page_up>") == "Super+PageUp"


def test_portal_triggers_are_written_as_the_shortcuts_spec_says() -> None:
    from rmm_tray.shell.portal import trigger_for

    assert trigger_for("<ctrl>+<alt>+<space>") == "CTRL+ALT+space"
    assert trigger_for("<cmd>+<shift>+k") == "LOGO+SHIFT+k"
    assert trigger_for("<ctrl_l>+<f5>") == "CTRL+f5"
