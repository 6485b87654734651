"""Continue in the real popup under Xvfb, by keyboard (xdotool), with the real
model: a reply cut off at the token limit says so and offers Continue; Alt+C makes
the same reply go on, stored as one message."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

#: RMM_SCREENSHOTS=docs writes the screenshots where the docs show them.
SHOTS = os.environ.get("RMM_SCREENSHOTS")




def stored_reply(app: RunningApp) -> dict:
    chats = json.loads(app.cli("chats", "list", "--json").stdout)
    shown = json.loads(app.cli("chats", "show", chats[0]["id"], "--json", "--all-versions").stdout)
    replies = [m for m in shown["messages"] if m["role"] == "assistant"]
    assert len(replies) == 1, replies
    return replies[0]


def cut_and_offered(app: RunningApp) -> dict | None:
    msgs, seen = app.probe("messages"), app.probe("continue")
    if len(msgs) == 2 and not msgs[-1]["streaming"] and seen and seen["button"]:
        return {"text": msgs[-1]["text"], **seen}
    return None


def test_a_cut_off_reply_goes_on_with_alt_c(screen: Screen, home_with_model: Path,
                                            tmp_path: Path) -> None:
    (home_with_model / "config.toml").write_text(
        '[model]\ncontext_length = 1024\n[generation]\ntemperature = 0.0\nmax_tokens = 8\n'
        '[ui]\ntheme = "dark"\n')
    app = RunningApp(screen, home_with_model, "--no-tray")
    try:
        screen.run("xdotool", "mousemove", "5", "5")
        screen.key("ctrl+alt+space")
        wid = wait_for(screen.visible_popups, 15, "the popup")[0]
        wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
        screen.type("List the planets of the solar system with a fact about each.")
        screen.key("Return")
        first = wait_for(lambda: cut_and_offered(app), 120, "a cut-off reply with Continue")
        before = stored_reply(app)
        assert first["notes"] == [{"id": before["id"], "text": "Cut off at the token limit."}]
        assert first["button"]["id"] == before["id"] and first["button"]["text"] == "Continue"
        assert "Alt+C" in first["button"]["title"]
        screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "continue-dark.png")

        screen.key("alt+c")
        # The reply as stored is what grows: the page passes through states (the
        # reply taken out and put back) in which its text can read longer already.
        def went_on() -> dict | None:
            if app.probe("messages")[-1]["streaming"]:
                return None
            stored = stored_reply(app)
            return stored if len(stored["content"]) > len(before["content"]) else None

        after = wait_for(went_on, 120, "the reply to go on")
        wait_for(lambda: len(app.probe("messages")[-1]["text"]) > len(first["text"])
                 and not app.probe("messages")[-1]["streaming"], 10, "the page to show it")
        assert after["id"] == before["id"]  # the same message grew: no second reply
        assert after["content"].startswith(before["content"])
        assert len(after["content"]) > len(before["content"])
        msgs = app.probe("messages")
        assert len(msgs) == 2 and msgs[-1]["text"].startswith(first["text"].rstrip()[:20])

        # Cut off again: Continue is back, and a click on it goes on once more.
        second = wait_for(lambda: cut_and_offered(app), 60, "Continue again")
        screen.run("xdotool", "windowsize", wid, "360", "640")
        wait_for(lambda: app.probe("layout")["innerWidth"] == 360, 10, "the window at 360 px")
        screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "continue-360-dark.png")
        second = wait_for(lambda: cut_and_offered(app), 10, "Continue at 360 px")
        info = screen.run("xwininfo", "-id", wid).stdout
        at = {k.strip(): int(v) for k, v in (line.split(":") for line in info.splitlines()
              if line.strip().startswith(("Absolute upper-left X", "Absolute upper-left Y")))}
        r = second["button"]["rect"]
        screen.run("xdotool", "mousemove", str(int(at["Absolute upper-left X"] + r["x"] + r["width"] / 2)),
                   str(int(at["Absolute upper-left Y"] + r["y"] + r["height"] / 2)), "click", "1")
        wait_for(lambda: len(app.probe("messages")[-1]["text"]) > len(second["text"])
                 and not app.probe("messages")[-1]["streaming"], 120, "the reply to go on again")
        last = stored_reply(app)
        assert last["id"] == before["id"] and last["content"].startswith(after["content"])
        assert len(last["content"]) > len(after["content"])
    finally:
        app.close()
