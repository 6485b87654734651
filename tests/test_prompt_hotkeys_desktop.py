"""The prompts' own hotkeys as a person meets them, the real app under Xvfb:
in a Wayland session they go through the GlobalShortcuts portal with the main
hotkey (the fake portal of tests/fake_portal.py presses them), and the Settings
recorder and the Prompt Architect's hotkey field refuse keys another use has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_desktop_citizen as citizen
from test_desktop_citizen import App, field, popup_window, press_portal_shortcut
from test_prompt_desktop import select_in_another_window, state, tab_to

from desktop_helpers import Screen, wait_for
from rmm_tray.desktop import ipc

# The app starter and the fake portal on a private bus, as the desktop tests have them.
start, session_bus, fake_portal = citizen.start, citizen.session_bus, citizen.fake_portal

pytestmark = pytest.mark.desktop

SHOUT = ('description = "Say it louder"\nhotkey = "<ctrl>+<alt>+u"\nrun_immediately = true\n'
         '[[blocks]]\nkind = "user"\ntext = "Repeat in capitals: {{selection}}"\n')
PASTE = 'hotkey = "<ctrl>+<alt>+k"\n[[blocks]]\nkind = "user"\ntext = "Summarize: {{clipboard}}"\n'



def page_call(home: Path, method: str, *args: object) -> None:
    """What the page's own button does: its call, through the core's js path."""
    conn = ipc.connect(home)
    with conn:
        ipc.send_json(conn, {"cmd": "js", "method": method, "args": list(args)})


def portal_calls(log: Path, what: str) -> list[dict]:
    return [c for c in map(json.loads, log.read_text().splitlines()) if c["call"] == what]


@pytest.mark.slow
def test_wayland_prompt_hotkeys_go_through_the_portal(screen: Screen, start, session_bus: str,
                                                      fake_portal: Path, home_with_model: Path) -> None:
    (home_with_model / "prompts" / "shout.toml").write_text(SHOUT)
    (home_with_model / "prompts" / "paste.toml").write_text(PASTE)
    app: App = start("--no-tray", env={"XDG_SESSION_TYPE": "wayland",
                                       "DBUS_SESSION_BUS_ADDRESS": session_bus})
    status = wait_for(lambda: (lambda s: s if s["hotkey"] and s["prompt_hotkeys"] else None)(app.status()),
                      15, "the portal binding")
    assert status["prompt_hotkeys"] == {"<ctrl>+<alt>+u": "shout", "<ctrl>+<alt>+k": "paste"}
    assert status["prompt_hotkeys_via"] == "GlobalShortcuts portal"
    # One BindShortcuts with every shortcut, as the desktop's shortcut settings list them.
    [bind] = portal_calls(fake_portal, "BindShortcuts")
    assert bind["shortcuts"] == [
        ["toggle", {"description": "Show or hide the RunMyModel chat",
                    "preferred_trigger": "CTRL+ALT+space"}],
        ["prompt:paste", {"description": "Run the RunMyModel prompt 'paste'",
                          "preferred_trigger": "CTRL+ALT+k"}],
        ["prompt:shout", {"description": "Run the RunMyModel prompt 'shout' — Say it louder",
                          "preferred_trigger": "CTRL+ALT+u"}],
    ]
    doctor = app.cli("doctor").stdout
    assert ("ok    prompt hotkeys: Ctrl+Alt+K runs 'paste', Ctrl+Alt+U runs 'shout', through the "
            "GlobalShortcuts portal with the hotkey") in doctor

    # Another app has words selected (an XWayland app's selection; xclip reads it).
    selected = "the quiet fox"
    select_in_another_window(screen, selected)
    press_portal_shortcut(session_bus, "prompt:shout")
    popup_window(screen)

    def replied() -> list | None:
        msgs = app.probe("messages")
        done = len(msgs) >= 2 and msgs[-1]["role"] == "assistant" and not msgs[-1]["streaming"]
        return msgs if done and msgs[-1]["text"].strip() else None

    msgs = wait_for(replied, 90, "the reply in the popup")
    assert msgs[-2]["role"] == "user" and selected in msgs[-2]["text"]

    # A prompt saved with a new hotkey: the set is bound again, in a new session.
    wait_for(lambda: app.status()["state"] == "idle", 60, "the reply to end")
    draft = {"name": "paste", "original": "paste", "description": "", "tags": [], "hotkey": "<ctrl>+<alt>+j",
             "run_immediately": False, "blocks": [{"kind": "user", "text": "Summarize: {{clipboard}}"}],
             "variables": {}}
    page_call(home_with_model, "prompts_save", draft, "no")
    wait_for(lambda: app.status()["prompt_hotkeys"] == {"<ctrl>+<alt>+u": "shout", "<ctrl>+<alt>+j": "paste"},
             15, "the new hotkey bound")
    binds = portal_calls(fake_portal, "BindShortcuts")
    assert len(binds) == 2 and binds[0]["session"] != binds[1]["session"]
    assert [c["session"] for c in portal_calls(fake_portal, "Close")] == [binds[0]["session"]]
    assert ["prompt:paste", {"description": "Run the RunMyModel prompt 'paste'",
                             "preferred_trigger": "CTRL+ALT+j"}] in binds[1]["shortcuts"]
    select_in_another_window(screen, "copied words", which="clipboard")
    press_portal_shortcut(session_bus, "prompt:paste")
    form = wait_for(lambda: state(app)["form"], 15, "the prompt's form")
    assert form["name"] == "paste"
    assert {f["name"]: f["value"] for f in form["fields"]} == {"clipboard": "copied words"}

    # A new main hotkey from Settings: the whole set again, in a third session.
    page_call(home_with_model, "settings_save", {"ui.hotkey": "<ctrl>+<alt>+o"})
    binds = wait_for(lambda: (lambda b: b if len(b) == 3 else None)(
        portal_calls(fake_portal, "BindShortcuts")), 15, "the set bound again")
    assert [sid for sid, _ in binds[2]["shortcuts"]] == ["toggle", "prompt:paste", "prompt:shout"]
    assert binds[2]["shortcuts"][0][1]["preferred_trigger"] == "CTRL+ALT+o"
    wait_for(lambda: app.status()["hotkey"], 10, "the main hotkey bound")
    assert app.tray("Open chat (Ctrl+Alt+O)")["ok"]
    press_portal_shortcut(session_bus, "toggle")
    wait_for(lambda: not screen.visible_popups(), 10, "the main shortcut to hide the popup")


def test_settings_and_the_architect_refuse_a_hotkey_in_use(screen: Screen, start,
                                                          home_with_model: Path) -> None:
    (home_with_model / "prompts" / "shout.toml").write_text(SHOUT)
    config = home_with_model / "config.toml"
    before = config.read_text()
    # With the keyboard listener on: on X11 it hears keys without taking them, so
    # the recorders hold the global hotkeys while they have the keys (pressing the
    # main hotkey there would hide the popup, a prompt's would run that prompt).
    app: App = start("--no-tray")
    app.cli("show")
    popup_window(screen)
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the chat input")
    screen.key("ctrl+comma")
    wait_for(lambda: app.probe("focus") == "set-ui-hotkey-record", 10, "focus on Record")
    screen.key("Return")
    wait_for(lambda: field(app, "ui.hotkey")["value"] == "Press the keys…", 10, "the recorder")
    screen.key("ctrl+alt+u")
    wait_for(lambda: field(app, "ui.hotkey")["message"]
             == "Hotkey Ctrl+Alt+U is already the hotkey of prompt 'shout'", 10, "the refusal in place")
    assert field(app, "ui.hotkey")["invalid"] is True
    assert config.read_text() == before

    # The Prompt Architect: a new prompt's hotkey field, keys pressed as a person would.
    screen.key("ctrl+p")
    wait_for(lambda: state(app)["view"] == "prompts" and state(app)["list"], 10, "the Prompts view")
    tab_to(screen, app, lambda f: f["id"] == "pb-new", "New")
    screen.key("Return")
    wait_for(lambda: (state(app)["focus"] or {}).get("id") == "pb-name", 10, "the name field")
    screen.type("mine")
    tab_to(screen, app, lambda f: f["id"] == "pb-hotkey", "the hotkey field")
    screen.key("ctrl+alt+space")
    wait_for(lambda: state(app)["builder"]["hotkey_message"]
             == "Hotkey Ctrl+Alt+Space is already the main hotkey (it opens the chat)", 10, "the main's use")
    screen.key("ctrl+alt+u")
    wait_for(lambda: state(app)["builder"]["hotkey_message"]
             == "Hotkey Ctrl+Alt+U is already the hotkey of prompt 'shout'", 10, "the other prompt's use")
    screen.key("ctrl+alt+h")
    wait_for(lambda: state(app)["builder"]["hotkey"] == "<ctrl>+<alt>+h"
             and state(app)["builder"]["hotkey_message"] == "", 10, "free keys: no message")
    # Neither recorder fired what it recorded: the popup is still up, on the Architect.
    assert screen.visible_popups() and state(app)["view"] == "prompts"
    assert (state(app)["focus"] or {}).get("id") == "pb-hotkey"
