"""Versions in the real popup under Xvfb, by keyboard (xdotool), with the real
model: Regenerate keeps every reply behind ‹ n/N ›, the chosen one is what the
chat goes on from; Edit is a state that Esc leaves untouched, and sending an edit
keeps the old question one step away."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

#: RMM_SCREENSHOTS=docs writes the screenshots where the docs show them.
SHOTS = os.environ.get("RMM_SCREENSHOTS")


@pytest.fixture(scope="module")
def screen():
    s = Screen()
    yield s
    s.close()


@pytest.fixture()
def start(screen: Screen, home_with_model: Path):
    apps: list[RunningApp] = []

    def starter(*args: str) -> RunningApp:
        apps.append(RunningApp(screen, home_with_model, *args))
        return apps[-1]

    yield starter
    for app in apps:
        app.close()


def shown(app: RunningApp) -> dict:
    return app.probe("history")


def settled(app: RunningApp, count: int, versions: str | None = None) -> dict:
    """The page once ``count`` messages show, the last a whole reply (with ``versions``)."""
    def check():  # type: ignore[no-untyped-def]
        page, msgs = shown(app), app.probe("messages")
        if len(msgs) == count and msgs[-1]["role"] == "assistant" and not msgs[-1]["streaming"] \
                and msgs[-1]["text"].strip() and page["messages"][-1]["versions"] == versions:
            return page
        return None
    return wait_for(check, 120, f"{count} messages, the last with versions {versions}")


def shoot(screen: Screen, wid: str, path: Path) -> None:
    time.sleep(0.8)  # for the picture only: the X server draws the new layout a moment later
    info = screen.run("xwininfo", "-id", wid).stdout
    get = {k.strip(): int(v) for k, v in (line.split(":") for line in info.splitlines()
           if line.strip().startswith(("Absolute upper-left", "Width", "Height")))}
    x, y = get["Absolute upper-left X"], get["Absolute upper-left Y"]
    screen.screenshot(path, (x, y, x + get["Width"], y + get["Height"]))


def test_regenerate_edit_and_cancel_by_keyboard(screen: Screen, start, home_with_model: Path,
                                                tmp_path: Path) -> None:
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write('[ui]\ntheme = "dark"\n')
    app = start("--no-tray")
    screen.run("xdotool", "mousemove", "5", "5")
    screen.key("ctrl+alt+space")
    wid = wait_for(screen.visible_popups, 15, "the popup")[0]
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
    screen.type("Name a colour")
    screen.key("Return")
    first = settled(app, 2)["messages"][1]

    screen.key("alt+r")
    second = settled(app, 2, "2/2")["messages"][1]
    screen.key("alt+r")
    settled(app, 2, "3/3")
    assert second["id"] != first["id"]

    screen.key("alt+Left")
    wait_for(lambda: shown(app)["messages"][1]["versions"] == "2/3", 10, "version 2 of 3")
    screen.key("alt+Left")
    page = wait_for(lambda: (lambda p: p if p["messages"][1]["versions"] == "1/3" else None)(shown(app)),
                    10, "version 1 of 3")
    assert page["messages"][1]["id"] == first["id"] and page["messages"][1]["text"] == first["text"]

    screen.key("ctrl+a")  # the input still has the focus: the next turn goes on from version 1
    screen.type("And another one?")
    screen.key("Return")
    settled(app, 4)
    chats = json.loads(app.cli("chats", "list", "--json").stdout)
    stored = json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)
    assert [m["id"] for m in stored["messages"]][:2] == [page["messages"][0]["id"], first["id"]]
    assert len(json.loads(app.cli("chats", "show", chats[0]["id"], "--json",
                                  "--all-versions").stdout)["messages"]) == 6

    # Edit, then Esc: the chat and the input exactly as they were.
    screen.type("a draft")
    screen.key("ctrl+a", "BackSpace")
    before, history_before = shown(app), app.cli("chats", "show", chats[0]["id"], "--json").stdout
    screen.key("Up")
    editing = wait_for(lambda: (lambda p: p if p["banner"] else None)(shown(app)), 10, "the edit state")
    question = editing["messages"][2]
    assert editing["editing"] == question["id"] and question["editing"]
    assert editing["input"] == "And another one?"
    screen.type(" changed")
    shoot(screen, wid, Path(SHOTS or tmp_path) / "history-edit-dark.png")
    screen.key("Escape")
    after = wait_for(lambda: (lambda p: p if not p["banner"] else None)(shown(app)), 10, "the edit to end")
    assert after == before, "Esc leaves the chat and the input untouched"
    assert screen.visible_popups(), "Esc ended the edit; it did not hide the popup"
    assert app.cli("chats", "show", chats[0]["id"], "--json").stdout == history_before

    # Edit, then send: a new branch; the old question is one ‹ away.
    screen.key("Up")
    wait_for(lambda: shown(app)["banner"], 10, "the edit state")
    screen.key("ctrl+a")
    screen.type("And a third one?")
    screen.key("Return")
    page = settled(app, 4)
    assert page["messages"][2]["text"] == "And a third one?" and page["messages"][2]["versions"] == "2/2"
    assert not page["banner"] and page["input"] == ""
    screen.run("xdotool", "windowsize", wid, "360", "640")
    wait_for(lambda: app.probe("layout")["innerWidth"] == 360, 10, "the window at 360 px")
    shoot(screen, wid, Path(SHOTS or tmp_path) / "history-versions-360-dark.png")
    every = app.cli("chats", "show", chats[0]["id"], "--all-versions").stdout
    assert "And another one?" in every and "And a third one?" in every and "[version 1/2]" in every
