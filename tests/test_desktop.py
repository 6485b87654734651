"""The desktop app as a person uses it: a real window under Xvfb, real key
events from xdotool, the real engine on the starter model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = pytest.mark.desktop



@pytest.fixture()
def start(screen: Screen, home_with_model: Path):
    apps: list[RunningApp] = []

    def starter(*args: str) -> RunningApp:
        app = RunningApp(screen, home_with_model, *args)
        apps.append(app)
        return app

    yield starter
    for app in apps:
        app.close()


def finished_reply(app: RunningApp) -> dict:
    def done():
        msgs = app.probe("messages")
        if msgs and msgs[-1]["role"] == "assistant" and not msgs[-1]["streaming"] \
                and msgs[-1]["text"].strip():
            return msgs
        return None

    return wait_for(done, 60, "the reply in the page")


@pytest.mark.slow
def test_hotkey_opens_the_popup_and_chats(screen: Screen, start) -> None:
    app = start("--no-tray")
    assert app.status()["hotkey"] is True
    assert screen.visible_popups() == [], "created hidden"
    # Away from where the popup appears: focus must not come from the pointer.
    screen.run("xdotool", "mousemove", "5", "5")
    screen.key("ctrl+alt+space")
    wait_for(screen.visible_popups, 10, "the popup to show")
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
    screen.type("Hello there")
    screen.key("shift+Return")
    screen.type("second line")
    screen.key("Return")
    msgs = finished_reply(app)
    assert msgs[-2] == {**msgs[-2], "role": "user", "text": "Hello there\nsecond line"}
    chats = json.loads(app.cli("chats", "list", "--json").stdout)
    shown = json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)
    assert shown["messages"][1]["content"].strip() == msgs[-1]["text"].strip()
    screen.key("ctrl+n")
    wait_for(lambda: app.probe("messages") == [], 10, "Ctrl+N to start a new chat")
    screen.key("Escape")
    wait_for(lambda: not screen.visible_popups(), 10, "Esc to hide the popup")


@pytest.mark.slow
def test_toggle_command_without_the_hotkey(screen: Screen, start) -> None:
    app = start("--no-tray", "--no-hotkey")
    assert app.status()["hotkey"] is False
    assert app.cli("toggle").returncode == 0
    wait_for(screen.visible_popups, 10, "toggle to show the popup")
    screen.key("ctrl+alt+space")  # nobody listens: nothing changes
    assert app.cli("toggle").returncode == 0
    wait_for(lambda: not screen.visible_popups(), 10, "toggle to hide the popup")
    assert app.cli("show").returncode == 0
    wait_for(screen.visible_popups, 10, "show")
    assert app.cli("hide").returncode == 0
    wait_for(lambda: not screen.visible_popups(), 10, "hide")


@pytest.mark.slow
def test_killed_popup_comes_back_and_the_model_stays_loaded(screen: Screen, start) -> None:
    app = start("--no-tray")
    app.tray("Model", "gemma-3-270m-q4_k_m.gguf", click=True)
    wait_for(lambda: app.status()["loads"] == 1 and app.status()["state"] == "idle", 30, "load")
    first = app.status()["popup_pid"]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: app.status()["popup_pid"] != first and app.status()["popup_connected"], 60,
             "a new popup process")
    screen.key("ctrl+alt+space")
    wait_for(screen.visible_popups, 10, "the fresh popup to show")
    status = app.status()
    assert status["loads"] == 1 and status["model"] == "gemma-3-270m-q4_k_m.gguf"
    wait_for(lambda: app.probe("state").endswith("gemma-3-270m-q4_k_m.gguf"), 10, "page state")


@pytest.mark.slow
def test_second_start_shows_the_popup_and_exits(screen: Screen, start) -> None:
    app = start("--no-tray", "--no-hotkey")
    again = app.cli("start", "--no-tray")
    assert again.returncode == 0 and "already running" in again.stderr
    wait_for(screen.visible_popups, 10, "the existing popup to show")
    assert app.status()["pid"] == app.proc.pid


@pytest.mark.slow
def test_tray_menu_switches_the_model_and_the_radio_follows(
    screen: Screen, start, home_with_model: Path, starter_model: Path
) -> None:
    (home_with_model / "models" / "second-q4_k_m.gguf").symlink_to(starter_model)
    app = start("--no-tray", "--no-hotkey")
    entries = app.tray("Model")["entries"]
    assert entries[:2] == ["gemma-3-270m-q4_k_m.gguf", "second-q4_k_m.gguf"]
    app.tray("Model", "second-q4_k_m.gguf", click=True)
    wait_for(lambda: app.status()["model"] == "second-q4_k_m.gguf", 30, "the switch")
    assert app.tray("Model", "second-q4_k_m.gguf")["checked"] is True
    assert app.tray("Model", "gemma-3-270m-q4_k_m.gguf")["checked"] is False

    app.cli("show")
    wait_for(screen.visible_popups, 10, "show")
    wait_for(lambda: app.probe("focus") == "input", 10, "focus")
    screen.type("Hi")
    screen.key("Return")
    finished_reply(app)
    chats = json.loads(app.cli("chats", "list", "--json").stdout)
    reply = json.loads(app.cli("chats", "show", chats[0]["id"], "--json").stdout)["messages"][-1]
    assert reply["model"] == "second-q4_k_m.gguf"
    assert app.status()["loads"] == 1, "one load: the switch; the reply used it"


HOSTILE = textwrap.dedent('''
    from rmm_tray import hookimpl

    PAYLOAD = """Here you go <script>window.__pwned = true</script>
    <img src=x onerror="window.__pwned = true"> <iframe src="javascript:window.__pwned=true"></iframe>
    [click me](javascript:window.__pwned=true) ![pic](javascript:alert(1))
    <svg onload="window.__pwned=true"><script>window.__pwned=true</script></svg>
    <a href="javascript:void(window.__pwned=true)" onclick="window.__pwned=true">x</a>
    <details open ontoggle="window.__pwned=true">y</details>

    ```html
    <script>window.__pwned = true</script>
    ```
    """

    @hookimpl
    def after_reply(draft):
        draft.text = PAYLOAD
''')


@pytest.mark.slow
def test_hostile_markdown_in_a_reply_runs_nothing(
    screen: Screen, start, home_with_model: Path
) -> None:
    (home_with_model / "plugins" / "hostile.py").write_text(HOSTILE)
    app = start("--no-tray", "--no-hotkey")
    app.cli("show")
    wait_for(lambda: app.probe("focus") == "input", 10, "focus")
    screen.type("Say something")
    screen.key("Return")
    wait_for(lambda: "<script>" in (finished_reply(app)[-1]["text"]), 30, "the hostile reply")
    safety = app.probe("safety")
    assert safety == {"bad": 0, "handlers": 0, "jsLinks": 0, "pwned": False, "title": "RunMyModel"}
    text = app.probe("messages")[-1]["text"]
    assert "<img src=x onerror=" in text, "shown as text, not made into an element"


@pytest.mark.slow
def test_real_tray_backend_starts_under_a_tray_host(screen: Screen, start) -> None:
    host = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype",
                             "pixel", "--width", "64", "--height", "32"],
                            env={**os.environ, **screen.env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        app = start("--no-hotkey")
        wait_for(lambda: app.status()["tray"], 20, "the tray icon")
        assert "no tray icon" not in app.log_text()

        def icon_drawn() -> bool:
            from PIL import ImageGrab

            image = ImageGrab.grab(xdisplay=screen.display).crop((1216, 0, 1280, 32)).convert("RGB")
            # The idle icon's gradient runs from (109, 93, 252) to (192, 77, 216).
            colours = image.getcolors(image.width * image.height) or []
            return any(r > 90 and b > 200 and g < 110 for _, (r, g, b) in colours)

        wait_for(icon_drawn, 20, "the icon in the tray host")
        assert app.tray("Open chat")["ok"], "started with --no-hotkey: the label names no hotkey"
    finally:
        host.terminate()
        host.wait(5)


COPY_CHECK = textwrap.dedent('''
    import subprocess, sys, threading
    import gi
    gi.require_version("Gtk", "3.0")
    from gi.repository import GLib, Gtk
    from rmm_tray.shell.popup_process import copy_to_clipboard

    PASTE = ("import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gdk, Gtk;"
             "print(repr(Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD).wait_for_text()))")

    def off_main():  # as pywebview calls js_api: on a thread of its own
        ok = copy_to_clipboard("copied from the popup ✓")
        try:  # another X client reads it: what a paste in another app would get
            out = subprocess.run([sys.executable, "-c", PASTE], capture_output=True, text=True,
                                 timeout=20).stdout.strip()
            print(ok, out)
        finally:
            GLib.idle_add(Gtk.main_quit)

    threading.Thread(target=off_main, daemon=True).start()
    Gtk.main()
''')


def test_the_copy_fallback_really_copies_and_says_so(screen: Screen) -> None:
    import sys

    out = subprocess.run([sys.executable, "-c", COPY_CHECK], capture_output=True, text=True,
                         timeout=60, env={**os.environ, **screen.env})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True 'copied from the popup ✓'"
    # Without a display there is no clipboard to copy to: it says so.
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    no_display = subprocess.run(
        [sys.executable, "-c", "from rmm_tray.shell.popup_process import copy_to_clipboard as c;"
         "print(c('x', timeout=2))"], capture_output=True, text=True, timeout=60, env=env)
    assert no_display.stdout.strip().splitlines()[-1:] == ["False"], no_display.stderr[-2000:]
