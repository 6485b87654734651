"""The Settings view's controller: the form it lays out, the checks as typed,
what saving writes and applies, and the plugin switch. The page and the shell
are recorders here; tests/test_desktop_citizen.py drives the real window."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import Page
from rmm_tray.app import App
from rmm_tray.desktop.settings_controller import AUTOSTART, SettingsController
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome


class Shell:
    def __init__(self) -> None:
        self.hotkeys: list[str] = []
        self.popup_configs = 0
        self.problem: str | None = None

    def rebind_hotkey(self, combo: str) -> str | None:
        self.hotkeys.append(combo)
        return self.problem

    def hotkey_status(self) -> str | None:
        return self.problem

    def popup_config(self) -> None:
        self.popup_configs += 1

    def open_data_folder(self) -> None:
        pass


@pytest.fixture()
def setup(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    (home / "config.toml").write_text("# mine\n[generation]\n# cold\ntemperature = 0.0\n")
    dh = DataHome(home)
    app = App(dh, Config.load(dh.config_file))
    page, shell = Page(), Shell()
    ctl = SettingsController(app, page, shell=shell)
    return app, page, shell, ctl


def wait(page: Page, kind: str, n: int = 1) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = page.of(kind)
        if len(found) >= n:
            return found
        time.sleep(0.01)
    raise AssertionError(f"no {kind} event; got {page.events}")


def test_the_form_has_every_section_and_field(setup) -> None:
    app, page, shell, ctl = setup
    ctl.open()
    form = wait(page, "settings.form")[0]
    titles = [s["title"] for s in form["sections"]]
    assert titles == ["General", "Model", "Generation", "History", "Local API"]
    fields = {f["name"]: f for s in form["sections"] for f in s["fields"]}
    assert list(fields) == [
        "ui.hotkey", "ui.hide_on_blur", "ui.theme", AUTOSTART, "ui.open_on", "model.default",
        "model.context_length", "model.gpu_layers", "model.threads", "generation.max_tokens",
        "generation.temperature", "generation.top_p", "generation.top_k", "generation.min_p",
        "generation.repeat_penalty", "history.backend", "server.enabled", "server.host", "server.port",
        "server.api_key", "server.save_chats"]
    assert fields["server.port"]["restart"] is True and fields["server.api_key"]["kind"] == "secret"
    assert fields["ui.hotkey"]["shown"] == "Ctrl+Alt+Space"
    assert fields["generation.temperature"]["value"] == 0.0
    assert fields["generation.top_p"]["hint"] == "between 0 and 1"
    assert fields["history.backend"]["restart"] is True
    assert ["jsonl", "jsonl"] in fields["history.backend"]["choices"]
    assert fields[AUTOSTART]["value"] is False
    assert form["home"] == str(app.home.root)
    assert {p["name"] for p in form["plugins"]} >= {"history_jsonl", "huggingface"}
    assert all(not p["switchable"] for p in form["plugins"] if p["source"] == "first-party")


def test_values_are_checked_as_typed_without_saving(setup) -> None:
    app, page, shell, ctl = setup
    before = app.home.config_file.read_text()
    ctl.check({"generation.top_p": "1.5"})
    ctl.check({"generation.top_k": "12"})
    checks = {e["name"]: e for e in wait(page, "settings.check", 2)}
    assert checks["generation.top_p"] == {
        "type": "settings.check", "name": "generation.top_p", "value": "1.5",
        "message": "Top P must be between 0 and 1, got '1.5'"}
    assert checks["generation.top_k"]["message"] is None
    assert app.home.config_file.read_text() == before


def test_saving_writes_in_place_and_says_when_it_applies(setup) -> None:
    app, page, shell, ctl = setup
    ctl.save({"generation.temperature": "0.6"})
    saved = wait(page, "settings.saved")[0]
    assert saved["value"] == 0.6 and saved["message"] == "Saved; applies from the next reply"
    text = app.home.config_file.read_text()
    assert "# mine" in text and "# cold" in text and "temperature = 0.6" in text
    assert app.config["generation"]["temperature"] == 0.6, "the running app uses it at once"
    ctl.save({"history.backend": "jsonl"})
    assert wait(page, "settings.saved", 2)[1]["message"] == "Saved; applies from the next start of the app"


def test_a_refused_value_is_said_beside_its_field_and_nothing_is_written(setup) -> None:
    app, page, shell, ctl = setup
    before = app.home.config_file.read_text()
    ctl.save({"model.context_length": "12"})
    check = wait(page, "settings.check")[0]
    assert check["value"] == "12", "what was typed comes back to its field"
    assert check["message"] == "Context length must be at least 256 tokens, got '12'"
    assert page.of("settings.saved") == [] and app.home.config_file.read_text() == before


def test_the_hotkey_is_checked_then_rebound_at_once(setup) -> None:
    app, page, shell, ctl = setup
    ctl.save({"ui.hotkey": "<ctrl>+c"})
    assert wait(page, "settings.check")[0]["message"] == "Hotkey Ctrl+C is already Copy"
    assert shell.hotkeys == []
    ctl.save({"ui.hotkey": "<ctrl>+<alt>+k"})
    saved = wait(page, "settings.saved")[0]
    assert saved["message"] == "Saved; Ctrl+Alt+K opens the chat now" and saved["shown"] == "Ctrl+Alt+K"
    assert shell.hotkeys == ["<ctrl>+<alt>+k"]
    assert 'hotkey = "<ctrl>+<alt>+k"' in app.home.config_file.read_text()


def test_theme_and_hide_on_blur_apply_at_once(setup) -> None:
    app, page, shell, ctl = setup
    ctl.save({"ui.theme": "dark"})
    applied = wait(page, "settings.applied")[0]
    assert applied == {"type": "settings.applied", "theme": "dark", "open_on": "last"}
    ctl.save({"ui.hide_on_blur": True})
    wait(page, "settings.saved", 2)
    assert shell.popup_configs == 1


def test_start_at_login_writes_and_removes_the_autostart_entry(setup, tmp_path: Path) -> None:
    app, page, shell, ctl = setup
    entry = tmp_path / "xdg-config" / "autostart" / "RunMyModel.desktop"
    ctl.save({AUTOSTART: True})
    assert wait(page, "settings.saved")[0]["message"] == "Starts at login"
    assert "X-GNOME-Autostart-enabled=true" in entry.read_text()
    ctl.save({AUTOSTART: False})
    wait(page, "settings.saved", 2)
    assert not entry.exists()


def test_a_third_party_plugin_is_switched_off_and_on(setup) -> None:
    app, page, shell, ctl = setup
    (app.home.plugins / "mine.py").write_text("x = 1\n")
    ctl.set_plugin("mine", "0")
    saved = wait(page, "settings.saved")[0]
    assert saved["message"] == "mine is turned off from the next start of the app"
    assert Config.load(app.home.config_file)["plugins"]["disabled"] == ["mine"]
    form = wait(page, "settings.form")[0]
    mine = next(p for p in form["plugins"] if p["name"] == "mine")
    assert mine["enabled"] is False and mine["switchable"] is True
    ctl.set_plugin("mine", "1")
    wait(page, "settings.saved", 2)
    assert Config.load(app.home.config_file)["plugins"]["disabled"] == []
    ctl.set_plugin("history_jsonl", "0")
    assert wait(page, "settings.error")[0]["message"] == \
        "history_jsonl is part of the app and cannot be turned off"


def test_the_form_shows_what_config_toml_says_now(setup) -> None:
    app, page, shell, ctl = setup
    from rmm_tray.home import config_values

    config_values.set_values(app.home.config_file, {"generation.top_k": 7})  # as `config set` does
    ctl.open()
    form = wait(page, "settings.form")[0]
    fields = {f["name"]: f for s in form["sections"] for f in s["fields"]}
    assert fields["generation.top_k"]["value"] == 7 and app.config["generation"]["top_k"] == 7


def test_a_broken_config_toml_is_said_and_the_form_still_opens(setup) -> None:
    app, page, shell, ctl = setup
    app.home.config_file.write_text("[generation]\ntop_p = 3\n")
    ctl.open()
    assert wait(page, "settings.error")[0]["message"] == (
        "config.toml: [generation] top_p must be between 0 and 1, got 3 (line 2); "
        "showing the settings in use")
    assert wait(page, "settings.form")
