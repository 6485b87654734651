"""Versions in the real popup under Xvfb, by keyboard (xdotool), with the real
model: Regenerate keeps every reply behind ‹ n/N ›, the chosen one is what the
chat goes on from; Edit is a state that Esc leaves untouched, and sending an edit
keeps the old question one step away."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

#: RMM_SCREENSHOTS=docs writes the screenshots where the docs show them.
SHOTS = os.environ.get("RMM_SCREENSHOTS")



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
        # The list first: a page read before it could be from a batch before the end.
        msgs = app.probe("messages")
        page = shown(app)
        if len(msgs) == count and msgs[-1]["role"] == "assistant" and not msgs[-1]["streaming"] \
                and msgs[-1]["text"].strip() and page["messages"][-1]["versions"] == versions:
            return page
        return None
    return wait_for(check, 120, f"{count} messages, the last with versions {versions}")



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
    screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "history-edit-dark.png")
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
    screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "history-versions-360-dark.png")
    every = app.cli("chats", "show", chats[0]["id"], "--all-versions").stdout
    assert "And another one?" in every and "And a third one?" in every and "[version 1/2]" in every

    # The tray's Recent chats: one line per chat, the popup's only (a one-shot CLI chat is not one).
    from rmm_tray.plugins.history_jsonl import JsonlHistory

    h = JsonlHistory(home_with_model / "chats")
    h.create_chat(title="First line\nsecond line\tand a tab", model=None, source="popup")
    h.create_chat(title="from a script", model=None, source="cli")
    h.close()
    entries = app.tray("Recent chats")["entries"]
    assert entries[0] == "First line second line and a tab"
    assert "from a script" not in entries and "Name a colour" in entries
    assert all("\n" not in e and "\t" not in e for e in entries)


def rows(app: RunningApp) -> list[dict]:
    return shown(app)["view"]["rows"]


def new_turn(screen: Screen, app: RunningApp, text: str) -> None:
    screen.key("ctrl+n")
    wait_for(lambda: app.probe("messages") == [], 10, "a new chat")
    screen.type(text)
    screen.key("Return")
    settled(app, 2)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_history_view_search_open_rename_pin_delete_undo_export(screen: Screen, start,
                                                                home_with_model: Path,
                                                                tmp_path: Path, theme: str) -> None:
    import re

    with (home_with_model / "config.toml").open("a") as fh:
        fh.write(f'[ui]\ntheme = "{theme}"\n')
    app = start("--no-tray")
    screen.run("xdotool", "mousemove", "5", "5")
    screen.key("ctrl+alt+space")
    wid = wait_for(screen.visible_popups, 15, "the popup")[0]
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
    for prompt in ("The ocean is deep and", "My favourite recipe for bread", "Cats like to sleep because"):
        new_turn(screen, app, prompt)
    listed = json.loads(app.cli("chats", "list", "--json").stdout)
    assert len(listed) == 3
    oldest = listed[-1]["id"]  # three chats back
    texts = {c["id"]: " ".join(m["content"] for m in json.loads(
        app.cli("chats", "show", c["id"], "--json").stdout)["messages"]) for c in listed}
    reply = json.loads(app.cli("chats", "show", oldest, "--json").stdout)["messages"][1]
    others = " ".join(t for cid, t in texts.items() if cid != oldest).lower()
    word = next(w for w in sorted(set(re.findall(r"[A-Za-z]{5,}", reply["content"])), key=len, reverse=True)
                if w.lower() not in others and w.lower() not in "the ocean is deep and")

    screen.key("ctrl+h")
    wait_for(lambda: shown(app)["view"]["shown"] and app.probe("focus") == "history-search", 10,
             "the History view, its search focused")
    assert [r["id"] for r in rows(app)] == [c["id"] for c in listed], "newest first"
    screen.type(word)
    found = wait_for(lambda: (lambda v: v["rows"] if v["answered"] == word else None)(shown(app)["view"]),
                     15, "results for the word")
    assert [r["id"] for r in found] == [oldest]
    assert found[0]["message_id"] == reply["id"] and found[0]["marks"] and set(found[0]["marks"]) == {word}
    assert word in found[0]["snippet"]
    screen.window_screenshot(wid, Path(SHOTS or tmp_path) / f"history-search-{theme}.png")
    screen.key("Return")
    wait_for(lambda: not shown(app)["view"]["shown"] and app.probe("focus") == "input", 10,
             "the chat opened, the input focused")
    assert [m["id"] for m in shown(app)["messages"]][1] == reply["id"], "the chat with the hit"

    screen.key("ctrl+h")
    wait_for(lambda: app.probe("focus") == "history-search", 10, "the search box again")
    screen.key("ctrl+a", "BackSpace")
    wait_for(lambda: len(rows(app)) == 3, 10, "every chat again")
    newest = rows(app)[0]["id"]
    screen.key("F2")
    wait_for(lambda: shown(app)["view"]["renaming"] == newest, 10, "the rename box")
    screen.key("ctrl+a")
    screen.type("Cats, renamed")
    screen.key("Return")
    wait_for(lambda: rows(app)[0]["title"] == "Cats, renamed", 10, "the new title")
    screen.key("alt+p")
    wait_for(lambda: rows(app)[0]["pinned"], 10, "pinned")
    assert shown(app)["view"]["groups"][0] == "Pinned"
    stored = {c["id"]: c for c in json.loads(app.cli("chats", "list", "--json").stdout)}
    assert (stored[newest]["title"], stored[newest]["pinned"]) == ("Cats, renamed", True)

    screen.run("xdotool", "windowsize", wid, "360", "640")
    wait_for(lambda: app.probe("layout")["innerWidth"] == 360, 10, "the window at 360 px")
    layout = app.probe("layout")
    assert layout["scrollWidth"] <= layout["innerWidth"], layout
    screen.key("Down")
    doomed = rows(app)[1]["id"]
    screen.key("Delete")
    wait_for(lambda: (shown(app)["view"]["toast"] or "").startswith("Deleted"), 10, "Deleted, with Undo")
    wait_for(lambda: doomed not in [r["id"] for r in rows(app)], 10, "the row gone")
    screen.window_screenshot(wid, Path(SHOTS or tmp_path) / f"history-view-360-{theme}.png")
    assert doomed not in app.cli("chats", "list").stdout
    screen.key("ctrl+z")
    wait_for(lambda: doomed in [r["id"] for r in rows(app)], 10, "Undo brought it back")
    assert doomed in app.cli("chats", "list").stdout

    # Export goes through the desktop's save dialog, opened on the exports folder
    # with the chat's title as the name; the person types where it goes.
    screen.key("alt+e")
    dialog = wait_for(lambda: screen.run("xdotool", "search", "--onlyvisible", "--name", "Export chat",
                                         check=False).stdout.split(), 15, "the save dialog")[0]
    if SHOTS:
        screen.window_screenshot(dialog, Path(SHOTS) / "history-export-dialog.png")
    target = tmp_path / "chosen" / "my chat.md"
    target.parent.mkdir()
    screen.key("ctrl+a")
    screen.type(str(target))
    screen.key("Return")
    toast = wait_for(lambda: (lambda t: t if t and t.startswith("Exported to ") else None)(
        shown(app)["view"]["toast"]), 15, "the export")
    path = Path(toast[len("Exported to "):])
    assert path == target and path.is_file()
    text = path.read_text(encoding="utf-8")
    selected = rows(app)[shown(app)["view"]["selected"]]
    assert text.startswith(f"# {selected['title']}") and "## You" in text and "## Assistant" in text
    # Esc in the dialog: nothing written, and the view says so.
    screen.key("alt+j")
    wait_for(lambda: screen.run("xdotool", "search", "--onlyvisible", "--name", "Export chat",
                                check=False).stdout.split(), 15, "the save dialog again")
    screen.key("Escape")
    wait_for(lambda: shown(app)["view"]["toast"] == "Export cancelled", 10, "Export cancelled")
    assert not list(target.parent.glob("*.json")) and not list((home_with_model / "exports").glob("*.json"))
    wait_for(lambda: app.probe("focus") is not None, 5, "the popup still there")
    screen.key("Escape")
    wait_for(lambda: not shown(app)["view"]["shown"], 10, "Esc back to the chat")
