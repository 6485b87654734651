"""Adding a server in the popup under Xvfb, as a person does: Models ▸ Servers ▸
Add server…, by keyboard (and the pointer for one button), with a real second
`rmm-tray serve` on loopback as the server. Test connection says what it found,
Add puts its model in the picker at once, and a reply streams from it into
history; a wrong key is one line in the form and adds nothing, the right one adds
it and the key is kept out of config.toml where a keyring can hold it (else the
file is private to its owner); Remove takes it out of the picker again.

RMM_SCREENSHOTS=docs writes the form's pictures where docs/remote.md shows them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_remote_desktop import choose_second, focus_picker, last_chat, picker, reply_in_page
from test_server_api import Served, free_port, make_home, start, stop

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.slow, pytest.mark.integration]

LOCAL = "gemma-3-270m-q4_k_m.gguf"
DRAFT = "The capital of France is"



@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Iterator[Served]:
    served = start(make_home(tmp_path_factory.mktemp("remote") / "home", starter_model))
    yield served
    stop(served)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Iterator[Served]:
    """A server that wants the key "right-key" (bound to loopback: --host makes it ask)."""
    config = '[model]\ncontext_length = 1024\n[server]\napi_key = "right-key"\n'
    served = start(make_home(tmp_path_factory.mktemp("keyed") / "home", starter_model, config),
                   "--host", "127.0.0.1", port=free_port())
    yield served
    stop(served)


def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("RMM_SCREENSHOTS") or tmp_path)


def servers(app: RunningApp) -> dict:
    return app.probe("servers")


def open_servers_pane(screen: Screen, app: RunningApp) -> None:
    """Ctrl+M to the Models view, back to its pane tabs, Right twice to Servers."""
    screen.key("ctrl+m")
    wait_for(lambda: app.probe("view")["view"] == "models", 10, "the Models view")
    wait_for(lambda: app.probe("view")["focus"] == "models-query", 10, "focus in the search box")
    # The view asks the Hub at once (unreachable here); its answer belongs to the first pane.
    wait_for(lambda: (lambda m: m["error"] or m["results"])(app.probe("models")), 30, "the Hub's answer")
    screen.key("shift+Tab")
    wait_for(lambda: app.probe("view")["focus"] == "pane-browse", 5, "the pane tabs")
    screen.key("Right")
    wait_for(lambda: app.probe("view")["focus"] == "pane-installed", 5, "the second pane")
    screen.key("Right")
    wait_for(lambda: app.probe("view")["focus"] == "pane-servers", 5, "the Servers pane")
    wait_for(lambda: servers(app)["pane"], 5, "the Servers pane shown")


def open_form(screen: Screen, app: RunningApp) -> None:
    for _ in range(6):  # from the pane's tab to its Add server… button, as a person tabs
        if servers(app)["focus"] == "add-server":
            break
        screen.key("Tab")
    assert servers(app)["focus"] == "add-server"
    screen.key("Return")
    wait_for(lambda: servers(app)["form"] and servers(app)["focus"] == "server-name", 5, "the form")


def fill(screen: Screen, name: str, url: str, key: str = "") -> None:
    """Name, Tab, base URL, Tab, the key (a password field)."""
    screen.type(name)
    screen.key("Tab")
    screen.type(url)
    screen.key("Tab")
    if key:
        screen.type(key)


def form_result(app: RunningApp) -> dict:
    return wait_for(lambda: (lambda f: f if f and f["result"] and not f["busy"] else None)(
        servers(app)["form"]), 30, "the form's result")


def popup(screen: Screen, app: RunningApp) -> str:
    assert app.cli("show").returncode == 0
    wid = wait_for(screen.visible_popups, 10, "the popup to show")[0]
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
    return wid


def click(screen: Screen, wid: str, at: list[int]) -> None:
    screen.run("xdotool", "mousemove", "--window", wid, str(at[0]), str(at[1]), "click", "1")


def keyring_usable(screen: Screen) -> bool:
    """Whether the app (on this screen's session bus) finds a keyring that stores keys."""
    probe = ("import keyring, sys\n"
             "try:\n keyring.set_password('rmm-tray-test', 'probe', 'x')\n"
             " ok = keyring.get_password('rmm-tray-test', 'probe') == 'x'\n"
             " keyring.delete_password('rmm-tray-test', 'probe')\n"
             "except Exception:\n ok = False\n"
             "sys.exit(0 if ok else 1)\n")
    return subprocess.run([sys.executable, "-c", probe], env={**os.environ, **screen.env},
                          capture_output=True, timeout=60).returncode == 0


def test_a_server_added_in_the_popup_serves_the_next_reply_into_history(
        screen: Screen, home_with_model: Path, remote: Served, tmp_path: Path) -> None:
    app = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    try:
        model = remote.health()["model"]
        name = f"box:{model}"
        wid = popup(screen, app)
        screen.type(DRAFT)  # a draft, which nothing below may lose
        open_servers_pane(screen, app)
        wait_for(lambda: servers(app)["rows"] == [] and "No servers yet" in app.probe("servers_text"),
                 10, "no servers yet")

        # Test connection by keyboard: it says what the server has; nothing is written.
        open_form(screen, app)
        fill(screen, "box", remote.base)
        screen.key("Tab")
        wait_for(lambda: servers(app)["focus"] == "server-test", 5, "Tab to Test connection")
        screen.key("Return")
        shown = form_result(app)
        assert shown["result"] == f"1 model: {model}" and shown["kind"] == "ok"
        assert "[[remote]]" not in (home_with_model / "config.toml").read_text()
        screen.window_screenshot(wid, shots(tmp_path) / "remote-add-server.png")

        # Esc closes the form, not the popup; the view and the chat's draft are as they were.
        screen.key("Escape")
        wait_for(lambda: servers(app)["form"] is None and servers(app)["focus"] == "add-server", 5,
                 "the form closed, focus back on Add server…")
        assert screen.visible_popups() and servers(app)["draft"] == DRAFT

        # Add (Enter in a field): tested again, written, and in the picker without a restart.
        screen.key("Return")
        wait_for(lambda: servers(app)["form"] and servers(app)["form"]["name"] == "", 5, "an empty form")
        fill(screen, "box", remote.base)
        screen.key("Return")
        wait_for(lambda: servers(app)["form"] is None, 30, "the form closed after Add")
        wait_for(lambda: servers(app)["rows"] == [{"name": "box", "url": remote.base,
                                                   "text": f"1 model: {model}", "error": False}],
                 30, "the server listed with its model")
        config = (home_with_model / "config.toml").read_text()
        assert 'name = "box"' in config and f'base_url = "{remote.base}"' in config
        wait_for(lambda: picker(app) == [LOCAL, name], 30, "its model in the picker")
        screen.window_screenshot(wid, shots(tmp_path) / "remote-servers.png")

        # Back to the chat: the draft is there; choose the server's model and send it.
        screen.key("ctrl+m")
        wait_for(lambda: app.probe("view")["view"] == "chat", 5, "the chat")
        assert servers(app)["draft"] == DRAFT
        focus_picker(screen, app)
        choose_second(screen)
        wait_for(lambda: app.probe("state") == f"ready|{name}", 10, "the remote model chosen")
        for _ in range(8):
            if app.probe("focus") == "input":
                break
            screen.key("Tab")
        screen.key("End", "Return")
        msgs = reply_in_page(app)
        chat = last_chat(app)
        assert chat["model"] == name
        assert [m["role"] for m in chat["messages"]] == ["user", "assistant"]
        assert chat["messages"][0]["content"] == DRAFT
        reply = chat["messages"][-1]
        assert reply["model"] == name and not reply["interrupted"]
        assert reply["content"].strip() == msgs[-1]["text"].strip()
        assert reply["stats"]["completion_tokens"] > 1, "streamed, in more than one piece"
        assert app.status()["loads"] == 0, "nothing was loaded here for the remote reply"
        # The CLI sees the same server (one config, one implementation).
        assert "box" in app.cli("remote", "list").stdout
    finally:
        app.close()


def test_a_wrong_key_is_one_line_in_the_form_and_the_right_one_is_kept_out_of_sight(
        screen: Screen, home_with_model: Path, keyed: Served, tmp_path: Path) -> None:
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write('\n[ui]\ntheme = "dark"\n')
    config_file = home_with_model / "config.toml"
    app = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    try:
        wid = popup(screen, app)
        open_servers_pane(screen, app)
        open_form(screen, app)
        fill(screen, "keyed", keyed.base, "wrong-key")
        form = servers(app)["form"]
        assert form["key_type"] == "password" and form["key_length"] == len("wrong-key")

        # Test connection with the pointer: the server's refusal, one line.
        click(screen, wid, form["buttons"]["server-test"])
        refused = form_result(app)
        assert refused["kind"] == "bad"
        assert refused["result"] == "keyed: the server refused the API key (HTTP 401)"
        screen.window_screenshot(wid, shots(tmp_path) / "remote-add-server-dark.png")

        # Add with the wrong key: the same line, nothing written, what was typed kept.
        screen.key("Return")
        again = form_result(app)
        assert again["result"] == refused["result"]
        assert (again["name"], again["url"], again["key_length"]) == ("keyed", keyed.base, 9)
        assert "keyed" not in config_file.read_text()
        assert servers(app)["focus"] == "server-key", "back in the field the line is about"

        # At 360 px the form still fits, no sideways scroll.
        screen.run("xdotool", "windowsize", wid, "360", "640")
        wait_for(lambda: app.probe("layout")["innerWidth"] == 360, 10, "the window at 360 px")
        time.sleep(0.3)  # the dialog's own layout after the resize, for the check and the picture
        assert app.probe("layout")["scrollWidth"] <= 360
        screen.window_screenshot(wid, shots(tmp_path) / "remote-add-server-360-dark.png")

        # The right key: added.
        screen.key("ctrl+a")
        screen.type("right-key")
        screen.key("Return")
        wait_for(lambda: servers(app)["form"] is None, 30, "the form closed after Add")
        model = wait_for(lambda: (lambda rows: rows and rows[0]["text"])(servers(app)["rows"]),
                         30, "the server listed")
        assert model.startswith("1 model: ")
        wait_for(lambda: any(m.startswith("keyed:") for m in picker(app)), 30, "its model in the picker")
        assert app.probe("layout")["scrollWidth"] <= 360
        screen.window_screenshot(wid, shots(tmp_path) / "remote-servers-360-dark.png")

        text = config_file.read_text()
        key_line = app.probe("servers_text")
        assert "wrong-key" not in text and "wrong-key" not in app.log_text()
        if keyring_usable(screen):
            assert "key in the keyring" in key_line and "right-key" not in text
        else:  # no keyring here: the key is in config.toml, readable by its owner only
            assert "key in config.toml" in key_line
            assert 'api_key = "right-key"' in text
            assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
        assert "right-key" not in app.log_text() and "right-key" not in key_line

        # Remove, confirmed by keyboard: out of the list, the picker and config.toml.
        screen.run("xdotool", "windowsize", wid, "640", "640")
        for _ in range(8):
            if servers(app)["focus"] == "Remove":
                break
            screen.key("Tab")
        assert servers(app)["focus"] == "Remove"
        screen.key("Return")
        wait_for(lambda: app.probe("view")["focus"] == "confirm-cancel", 5, "the question")
        screen.key("Tab")
        screen.key("Return")
        wait_for(lambda: servers(app)["rows"] == [], 30, "the server gone from the list")
        wait_for(lambda: picker(app) == [LOCAL], 30, "its model gone from the picker")
        assert "[[remote]]" not in config_file.read_text()
    finally:
        app.close()
