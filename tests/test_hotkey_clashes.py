"""Every hotkey of the app is one use of its keys: the main hotkey (Settings)
and each prompt's (the Prompt Architect's field) are refused when another use
has them, with a message naming that use. The page is a recorder here;
tests/test_prompt_hotkeys_desktop.py drives the real window."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Page
from rmm_tray.app import App
from rmm_tray.chat.templates import load_prompt_file
from rmm_tray.desktop import prompt_hotkeys
from rmm_tray.desktop.prompts_controller import PromptsController
from rmm_tray.desktop.settings_controller import SettingsController
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome

TRANSLATE = 'hotkey = "<ctrl>+<alt>+y"\n[[blocks]]\nkind = "user"\ntext = "Translate: {{selection}}"\n'
SHOUT = 'hotkey = "<ctrl>+<alt>+u"\n[[blocks]]\nkind = "user"\ntext = "Shout: {{selection}}"\n'


class Shell:
    def __init__(self) -> None:
        self.hotkeys: list[str] = []

    def rebind_hotkey(self, combo: str) -> str | None:
        self.hotkeys.append(combo)
        return None

    def hotkey_status(self) -> str | None:
        return None


class Chat:
    def current_model(self) -> Any:
        return None


@pytest.fixture()
def app(home: Path) -> App:
    (home / "prompts" / "translate.toml").write_text(TRANSLATE)
    (home / "prompts" / "shout.toml").write_text(SHOUT)
    dh = DataHome(home)
    return App(dh, Config.load(dh.config_file))


def wait(page: Page, kind: str, n: int = 1) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = page.of(kind)
        if len(found) >= n:
            return found
        time.sleep(0.01)
    raise AssertionError(f"no {kind} event; got {page.events}")


def test_settings_refuse_a_main_hotkey_that_a_prompt_has(app: App) -> None:
    page, shell = Page(), Shell()
    ctl = SettingsController(app, page, shell=shell)
    before = app.home.config_file.read_text()
    ctl.save({"ui.hotkey": "<alt>+<ctrl>+y"})  # the same keys, written another way
    check = wait(page, "settings.check")[0]
    assert check["message"] == "Hotkey Alt+Ctrl+Y is already the hotkey of prompt 'translate'"
    assert check["value"] == "<alt>+<ctrl>+y", "what was recorded stays in its field"
    assert shell.hotkeys == [] and app.home.config_file.read_text() == before
    ctl.save({"ui.hotkey": "<ctrl>+<alt>+j"})
    assert wait(page, "settings.saved")[0]["message"] == "Saved; Ctrl+Alt+J opens the chat now"
    assert shell.hotkeys == ["<ctrl>+<alt>+j"]


def test_the_popups_prompts_key_is_not_a_main_hotkey(app: App) -> None:
    assert prompt_hotkeys.main_hotkey_problem(app, "<ctrl>+p") == \
        "Hotkey Ctrl+P is already the popup's Prompts view"


def test_a_prompts_hotkey_clashes_with_the_main_one_and_another_prompts(app: App) -> None:
    mine = load_prompt_file(app.home.prompts / "shout.toml")
    assert prompt_hotkeys.problem(app, mine) is None, "its own saved keys are no clash"
    other = load_prompt_file(app.home.prompts / "translate.toml")
    from dataclasses import replace

    assert prompt_hotkeys.problem(app, replace(mine, hotkey=other.hotkey)) == \
        "Hotkey Ctrl+Alt+Y is already the hotkey of prompt 'translate'"
    assert prompt_hotkeys.problem(app, replace(mine, hotkey="<ctrl>+<alt>+<space>")) == \
        "Hotkey Ctrl+Alt+Space is already the main hotkey (it opens the chat)"


def test_the_architects_hotkey_field_is_judged_as_it_is_pressed(app: App) -> None:
    page = Page()
    ctl = PromptsController(app, page, chat=Chat())  # type: ignore[arg-type]
    draft = {"name": "new one", "original": "", "hotkey": "<ctrl>+<alt>+u",
             "blocks": [{"kind": "user", "text": "Hi {{selection}}"}], "variables": {}}
    ctl.preview(draft, {}, "1")
    first = wait(page, "prompts.hotkey")[0]
    assert first == {"type": "prompts.hotkey", "seq": "1", "hotkey": "<ctrl>+<alt>+u",
                     "message": "Hotkey Ctrl+Alt+U is already the hotkey of prompt 'shout'"}
    ctl.preview({**draft, "hotkey": "<ctrl>+<alt>+h"}, {}, "2")
    assert wait(page, "prompts.hotkey", 2)[1]["message"] is None
    ctl.save({**draft, "hotkey": "<ctrl>+<alt>+y"}, "no")
    error = wait(page, "prompts.save_error")[0]["message"]
    assert error == "prompt 'new one': Hotkey Ctrl+Alt+Y is already the hotkey of prompt 'translate'"
    assert not (app.home.prompts / "new one.toml").exists()
    ctl.close()
