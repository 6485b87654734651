"""A remote engine in the running app under Xvfb: a second `rmm-tray serve` on
loopback as the server; its model chosen in the popup's picker by keyboard and
in the tray's Model menu (through the menu's own callbacks); a reply streams
from it and lands in history, with no local model loaded for it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_server_api import Served, make_home, start, stop

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.slow, pytest.mark.integration]



@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Iterator[Served]:
    served = start(make_home(tmp_path_factory.mktemp("remote") / "home", starter_model))
    yield served
    stop(served)


@pytest.fixture()
def app(screen: Screen, home_with_model: Path, remote: Served) -> Iterator[RunningApp]:
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write(f'\n[[remote]]\nname = "box"\nbase_url = "{remote.base}"\n')
    running = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    yield running
    running.close()


def picker(app: RunningApp) -> list[str]:
    return app.probe("view")["picker"]


def reply_in_page(app: RunningApp) -> list[dict]:
    def done():
        msgs = app.probe("messages")
        if msgs and msgs[-1]["role"] == "assistant" and not msgs[-1]["streaming"] \
                and msgs[-1]["text"].strip():
            return msgs
        return None

    return wait_for(done, 60, "the reply in the page")


def last_chat(app: RunningApp) -> dict:
    chats = json.loads(app.cli("chats", "list", "--json").stdout)
    return json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)


def open_list(screen: Screen) -> None:
    screen.key("space")  # opens the list: WebKitGTK draws it as a menu of its own
    wait_for(lambda: len(screen.run("xdotool", "search", "--onlyvisible", "--class", "",
                                    check=False).stdout.split()) > 1, 5, "the list open")


def choose_second(screen: Screen, shot: Path | None = None) -> None:
    """From the focused picker: the entry after the local model, in the server's group."""
    open_list(screen)
    for step in ("Down", "Down"):  # past the local model and the server's heading
        time.sleep(0.3)  # the menu takes each key once it has drawn the last one
        screen.key(step)
    if shot is not None:
        time.sleep(0.5)  # for the picture only
        screen.screenshot(shot)
    screen.key("Return")


def focus_picker(screen: Screen, app: RunningApp) -> None:
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
    for _ in range(8):  # back from the input to the picker, as a person tabs
        if app.probe("focus") == "model":
            return
        screen.key("shift+Tab")
    assert app.probe("focus") == "model"


def test_the_remote_model_chosen_in_the_picker_streams_a_reply_into_history(
        screen: Screen, app: RunningApp, remote: Served) -> None:
    name = f"box:{remote.health()['model']}"
    local = "gemma-3-270m-q4_k_m.gguf"
    assert app.cli("show").returncode == 0
    wait_for(screen.visible_popups, 10, "the popup to show")
    wait_for(lambda: picker(app) == [local, name], 20, "the server's model in the picker")
    # The tray's menu lists it too.
    assert app.tray("Model")["entries"][:2] == [local, name]
    focus_picker(screen, app)
    choose_second(screen)
    wait_for(lambda: app.probe("state") == f"ready|{name}", 10, "the remote model chosen")
    for _ in range(8):
        if app.probe("focus") == "input":
            break
        screen.key("Tab")
    screen.type("The capital of France is")
    screen.key("Return")
    msgs = reply_in_page(app)
    chat = last_chat(app)
    assert chat["model"] == name
    reply = chat["messages"][-1]
    assert reply["model"] == name and not reply["interrupted"]
    assert reply["content"].strip() == msgs[-1]["text"].strip()
    assert reply["stats"]["model"] == name and reply["stats"]["completion_tokens"] > 1
    assert app.status()["loads"] == 0, "nothing was loaded here for a remote reply"

    # And back to the local model through the tray menu's own callback.
    app.tray("Model", local, click=True)
    wait_for(lambda: app.status()["model"] == local and app.status()["state"] == "idle", 30,
             "the local model loaded")


def test_the_servers_group_in_the_picker_dark_at_360_px(
        screen: Screen, home_with_model: Path, remote: Served, tmp_path: Path) -> None:
    """RMM_SCREENSHOTS=docs writes the pictures where docs/remote.md shows them."""
    shots = Path(os.environ.get("RMM_SCREENSHOTS") or tmp_path)
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write(f'\n[[remote]]\nname = "box"\nbase_url = "{remote.base}"\n[ui]\ntheme = "dark"\n')
    app = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    try:
        name = f"box:{remote.health()['model']}"
        assert app.cli("show").returncode == 0
        wid = wait_for(screen.visible_popups, 10, "the popup to show")[0]
        screen.run("xdotool", "windowsize", wid, "360", "640")
        wait_for(lambda: app.probe("layout")["innerWidth"] == 360, 10, "the window at 360 px")
        wait_for(lambda: name in picker(app), 20, "the server's model in the picker")
        focus_picker(screen, app)
        choose_second(screen, shots / "remote-picker-360-dark.png")
        wait_for(lambda: app.probe("state") == f"ready|{name}", 10, "the remote model chosen")
        assert app.probe("layout")["scrollWidth"] <= 360, "no sideways scroll at 360 px"
    finally:
        app.close()


def test_a_server_killed_mid_reply_keeps_the_partial_reply_and_the_popup_says_why(
        screen: Screen, home_with_model: Path, starter_model: Path, tmp_path: Path) -> None:
    config = "[model]\ncontext_length = 1024\n[generation]\nmax_tokens = 400\ntemperature = 0.8\n"
    doomed = start(make_home(tmp_path / "doomed", starter_model, config))
    with (home_with_model / "config.toml").open("a") as fh:
        # A long reply: the remote model's own settings, as for a local one.
        fh.write(f'\n[models."doomed:{starter_model.name}"]\nmax_tokens = 400\ntemperature = 0.8\n'
                 f'[[remote]]\nname = "doomed"\nbase_url = "{doomed.base}"\n')
    app = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    try:
        name = f"doomed:{doomed.health()['model']}"
        wait_for(lambda: name in app.tray("Model")["entries"], 20, "the server's model in the menu")
        app.tray("Model", name, click=True)  # the tray menu's own callback
        assert app.cli("show").returncode == 0
        wait_for(lambda: app.probe("state") == f"ready|{name}", 10, "the remote model chosen")
        wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
        screen.type("Write a long story about a dragon and a knight.")
        screen.key("Return")
        wait_for(lambda: (lambda m: len(m) == 2 and m[-1]["streaming"] and len(m[-1]["text"]) > 20)(
            app.probe("messages")), 60, "the reply streaming")
        doomed.proc.kill()  # mid-reply
        doomed.proc.wait()
        notice = wait_for(lambda: (app.probe("notice")["text"] or None), 30, "the popup to say why")
        assert notice.startswith("doomed: the stream stopped mid-reply")
        shown = wait_for(lambda: (lambda m: m if not m[-1]["streaming"] else None)(
            app.probe("messages")), 10, "the reply to stop streaming")
        reply = last_chat(app)["messages"][-1]
        assert reply["role"] == "assistant" and reply["interrupted"] is True
        assert reply["content"].strip() and reply["content"].strip()[:20] in shown[-1]["text"]
        # The local model still answers.
        app.tray("Model", "gemma-3-270m-q4_k_m.gguf", click=True)
        wait_for(lambda: app.status()["model"] == "gemma-3-270m-q4_k_m.gguf", 30, "the local model")
    finally:
        app.close()
        if doomed.proc.poll() is None:
            stop(doomed)
