"""Reading while a reply streams: a person who scrolls up in the transcript is
not pulled back down by new tokens, and "Jump to latest" takes them back.
Under Xvfb, with the real engine on the starter model and real mouse events
from xdotool."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.slow]


@pytest.fixture()
def app(home_with_model: Path):
    # A reply long enough to scroll for a while, and a popup short enough to need it.
    config = home_with_model / "config.toml"
    text, n = re.subn(r"(?m)^max_tokens = \d+$", "max_tokens = 700", config.read_text())
    assert n == 1
    config.write_text(text)
    screen = Screen()
    running = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    yield running
    running.close()
    screen.close()


def test_scrolling_up_holds_the_view_while_tokens_arrive(app: RunningApp, tmp_path: Path) -> None:
    screen = app.screen
    app.cli("show")
    window = wait_for(screen.visible_popups, 10, "the popup to show")[0]
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
    screen.type("Here is a long list of the names of fruits, one per line:")
    screen.key("Return")
    # The reply overflows the transcript while it is still streaming.
    first = wait_for(lambda: (lambda s: s if s["streaming"] and s["height"] > s["client"] + 300 else None)(
        app.probe("scroll")), 90, "a streaming reply taller than the transcript")
    assert first["top"] + first["client"] >= first["height"] - 2, "it followed the reply so far"
    assert first["jump"] is None

    x, y = first["middle"]["x"], first["middle"]["y"]
    screen.run("xdotool", "mousemove", "--window", window, str(x), str(y))
    screen.run("xdotool", "click", "--repeat", "3", "--delay", "30", "4")  # the wheel, up
    wait_for(lambda: app.probe("scroll")["jump"], 10, "the Jump to latest button")
    # The wheel scrolls smoothly: where it came to rest is where the person put the view.
    seen: list[int] = []

    def at_rest() -> dict | None:
        s = app.probe("scroll")
        seen.append(s["top"])
        time.sleep(0.3)
        return s if len(seen) >= 2 and seen[-1] == seen[-2] else None

    held = wait_for(at_rest, 10, "the wheel's scroll to come to rest")
    assert held["top"] + held["client"] < held["height"] - 50, "the wheel scrolled up"
    assert held["jump"]["text"].startswith("Jump to latest")

    # Tokens keep arriving (the transcript grows) and the view stays where the person put it.
    later = wait_for(lambda: (lambda s: s if s["height"] > held["height"] + 100 else None)(
        app.probe("scroll")), 60, "more of the reply")
    assert abs(later["top"] - held["top"]) <= 1, (held, later)
    assert later["jump"] is not None
    screen.screenshot(tmp_path / "held.png")

    jump = later["jump"]
    screen.run("xdotool", "mousemove", "--window", window, str(jump["x"]), str(jump["y"]))
    screen.run("xdotool", "click", "1")
    back = wait_for(lambda: (lambda s: s if s["jump"] is None else None)(app.probe("scroll")), 10,
                    "the button to take the view back")
    assert back["top"] + back["client"] >= back["height"] - 2
    # From there it follows again, to the reply's end.
    done = wait_for(lambda: (lambda s: s if not s["streaming"] else None)(app.probe("scroll")), 120,
                    "the reply to end")
    assert done["jump"] is None, done
    # Within a few pixels: the finished reply's own buttons come in after its last scroll.
    assert done["top"] + done["client"] >= done["height"] - 8, done
