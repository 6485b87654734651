"""The chat's system prompt in the real popup's header under Xvfb, by keyboard
(xdotool), with the real model: Alt+S edits it, Enter saves it with the chat, Esc
leaves it (and the popup) as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

#: RMM_SCREENSHOTS=docs writes the screenshots where the docs show them.
SHOTS = os.environ.get("RMM_SCREENSHOTS")




def header(app: RunningApp, **want: object) -> dict:
    def check():  # type: ignore[no-untyped-def]
        seen = app.probe("system")
        return seen if seen and all(seen.get(k) == v for k, v in want.items()) else None
    return wait_for(check, 15, f"the system header with {want}")


def test_edit_the_system_prompt_by_keyboard(screen: Screen, home_with_model: Path,
                                            tmp_path: Path) -> None:
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write('[ui]\ntheme = "dark"\n')
    app = RunningApp(screen, home_with_model, "--no-tray")
    try:
        screen.run("xdotool", "mousemove", "5", "5")
        screen.key("ctrl+alt+space")
        wid = wait_for(screen.visible_popups, 15, "the popup")[0]
        wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
        assert app.probe("system")["shown"] is False  # a new chat has none

        screen.key("alt+s")
        header(app, editing="", focus="system-editor")
        screen.type("Answer in French.")
        screen.key("Return")
        header(app, shown=True, text="Answer in French.", editing=None, focus="input")

        screen.type("Hello")
        screen.key("Return")
        wait_for(lambda: (lambda m: len(m) == 2 and not m[-1]["streaming"] and m[-1]["text"])(
            app.probe("messages")), 120, "the reply")
        chats = json.loads(app.cli("chats", "list", "--json").stdout)
        stored = json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)
        assert stored["system"] == "Answer in French."
        screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "system-prompt-dark.png")

        # Esc: the edit is dropped, the popup stays, the chat keeps its prompt.
        screen.key("alt+s")
        header(app, editing="Answer in French.", focus="system-editor")
        screen.key("ctrl+a")
        screen.type("Be a pirate.")
        screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "system-prompt-editing-dark.png")
        screen.run("xdotool", "windowsize", wid, "360", "640")
        wait_for(lambda: app.probe("layout")["innerWidth"] == 360, 10, "the window at 360 px")
        screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "system-prompt-editing-360-dark.png")
        screen.key("Escape")
        header(app, shown=True, text="Answer in French.", editing=None, focus="input")
        assert screen.visible_popups(), "Esc ended the edit; it did not hide the popup"
        again = json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)
        assert again["system"] == "Answer in French."

        # Saved again, and a new chat starts without it.
        screen.key("alt+s")
        header(app, focus="system-editor")
        screen.key("ctrl+a")
        screen.type("Be brief.")
        screen.key("Return")
        header(app, text="Be brief.")
        assert json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)["system"] == \
            "Be brief."
        screen.key("ctrl+n")
        header(app, shown=False)
    finally:
        app.close()
