"""The app as a desktop citizen, driven as a person would: a real popup under
Xvfb, real key events from xdotool. The window's class, the tray's hotkey
label, the Settings view (the recorder rebinding the hotkey at once, a bad
value refused in place), narrow widths, and opening the data folder on a
system without xdg-open."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop_helpers import REPO, RunningApp, Screen, wait_for
from rmm_tray.desktop import ipc

pytestmark = pytest.mark.desktop

#: Where the narrow-width screenshots go: RMM_SCREENSHOTS=docs to refresh the README's.
SHOTS = os.environ.get("RMM_SCREENSHOTS")



class App(RunningApp):
    """RunningApp with a chosen environment (a PATH without xdg-open)."""

    def __init__(self, screen: Screen, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.env = env or {}
        if env is None:
            super().__init__(screen, home, *args)
            return
        self.screen, self.home = screen, home
        self.log = (home / "logs" / "test-app.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rmm_tray", "start", *args],
            env={**os.environ, **screen.env, "RMM_HOME": str(home), **env}, cwd=REPO,
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.status().get("popup_connected"), 60, "the popup to connect")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command in the app's own environment (its session type, its PATH)."""
        return subprocess.run([sys.executable, "-m", "rmm_tray", *args], capture_output=True,
                              text=True, timeout=60, cwd=REPO,
                              env={**os.environ, **self.screen.env, "RMM_HOME": str(self.home), **self.env})


@pytest.fixture()
def start(screen: Screen, home_with_model: Path, tmp_path: Path):
    apps: list[App] = []

    def starter(*args: str, env: dict[str, str] | None = None) -> App:
        app = App(screen, home_with_model, *args,
                  env={"XDG_CONFIG_HOME": str(tmp_path / "xdg"), **(env or {})})
        apps.append(app)
        return app

    yield starter
    for app in apps:
        app.close()


def popup_window(screen: Screen) -> str:
    return wait_for(screen.visible_popups, 15, "the popup to show")[0]


def show_settings(screen: Screen, app: App) -> dict:
    screen.run("xdotool", "mousemove", "5", "5")
    screen.key("ctrl+alt+space")
    popup_window(screen)
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the chat input")
    screen.key("ctrl+comma")
    return wait_for(lambda: (lambda s: s if s["view"] == "settings" and s["fields"] else None)(
        app.probe("settings_view")), 10, "the Settings view")


def field(app: App, name: str) -> dict:
    return app.probe("settings_view")["fields"].get(name, {"value": None, "message": None})


def test_window_class_and_the_tray_label(screen: Screen, start) -> None:
    app = start("--no-tray")
    assert app.tray("Open chat (Ctrl+Alt+Space)")["ok"]
    app.cli("show")
    wid = popup_window(screen)
    out = screen.run("xprop", "-id", wid, "WM_CLASS").stdout
    assert out.strip() == 'WM_CLASS(STRING) = "RunMyModel", "RunMyModel"'
    app.cli("hide")


def test_without_a_hotkey_the_tray_says_none(screen: Screen, start) -> None:
    app = start("--no-tray", "--no-hotkey")
    assert app.tray("Open chat")["ok"]
    with pytest.raises(ipc.IPCError, match="no menu entry 'Open chat \\(Ctrl\\+Alt\\+Space\\)'"):
        app.tray("Open chat (Ctrl+Alt+Space)")


def test_an_invalid_hotkey_is_reported_and_the_app_runs(screen: Screen, start, home_with_model: Path) -> None:
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write('[ui]\nhotkey = "<ctrl>+<foo>"\n')
    app = start("--no-tray")
    status = app.status()
    assert status["hotkey"] is False
    assert status["hotkey_problem"].startswith("Hotkey: <foo> is not a key name")
    assert app.tray("Open chat")["ok"]
    assert "hotkey off: Hotkey: <foo> is not a key name" in (
        home_with_model / "logs" / "rmm-tray.log").read_text()
    doctor = app.cli("doctor").stdout
    assert "warn  hotkey: '<ctrl>+<foo>': Hotkey: <foo> is not a key name" in doctor
    app.cli("show")
    popup_window(screen)
    screen.key("ctrl+comma")
    wait_for(lambda: (field(app, "ui.hotkey")["message"] or "").startswith(
        "The hotkey is off: Hotkey: <foo> is not a key name"), 10, "Settings to say the hotkey is off")


def test_settings_recorder_rebinds_the_hotkey_at_once(screen: Screen, start, home_with_model: Path) -> None:
    config = home_with_model / "config.toml"
    config.write_text("# my notes\n" + config.read_text())
    app = start("--no-tray")
    show_settings(screen, app)
    # The view opens with the recorder focused: Enter starts it, the next keys are the hotkey.
    wait_for(lambda: app.probe("focus") == "set-ui-hotkey-record", 10, "focus on Record")
    screen.key("Return")
    wait_for(lambda: field(app, "ui.hotkey")["value"] == "Press the keys…", 10, "the recorder")
    screen.key("ctrl+alt+k")
    wait_for(lambda: field(app, "ui.hotkey")["message"] == "Saved; Ctrl+Alt+K opens the chat now", 10,
             "the new hotkey saved")
    assert field(app, "ui.hotkey")["value"] == "Ctrl+Alt+K"
    text = config.read_text()
    assert 'hotkey = "<ctrl>+<alt>+k"' in text and text.startswith("# my notes\n")
    assert app.tray("Open chat (Ctrl+Alt+K)")["ok"]
    screen.key("Escape")
    wait_for(lambda: not screen.visible_popups(), 10, "Esc to hide the popup")
    screen.key("ctrl+alt+k")
    popup_window(screen)


def test_recording_the_hotkey_in_use_records_it_without_firing_it(screen: Screen, start) -> None:
    """X11's listener hears keys without taking them from the page: while the
    recorder has them, the global hotkey must not hide the popup under it."""
    app = start("--no-tray")
    show_settings(screen, app)
    wait_for(lambda: app.probe("focus") == "set-ui-hotkey-record", 10, "focus on Record")
    screen.key("Return")
    wait_for(lambda: field(app, "ui.hotkey")["value"] == "Press the keys…", 10, "the recorder")
    screen.key("ctrl+alt+space")  # the hotkey in use: the popup would hide at once (~2 ms)
    wait_for(lambda: field(app, "ui.hotkey")["message"] == "Saved; Ctrl+Alt+Space opens the chat now",
             10, "the keys recorded")
    assert screen.visible_popups(), "the hotkey fired while the recorder had the keys"
    assert app.probe("settings_view")["view"] == "settings"
    # Recording over, the hotkey acts again (after the short grace for late keys).
    time.sleep(0.3)
    screen.key("ctrl+alt+space")
    wait_for(lambda: not screen.visible_popups(), 10, "the hotkey to hide the popup")


def test_settings_refuse_a_bad_value_in_place(screen: Screen, start, home_with_model: Path) -> None:
    config = home_with_model / "config.toml"
    app = start("--no-tray")
    show_settings(screen, app)
    for _ in range(20):  # Tab through the form, as a person would, to the context length
        if app.probe("focus") == "set-model-context-length":
            break
        screen.key("Tab")
    assert app.probe("focus") == "set-model-context-length"
    screen.key("ctrl+a")
    screen.type("12")
    wait_for(lambda: field(app, "model.context_length")["message"]
             == "Context length must be at least 256 tokens, got '12'", 10, "the message beside the field")
    screen.key("Return")
    shown = field(app, "model.context_length")
    assert shown["value"] == "12" and shown["invalid"] is True, "what was typed stays, marked"
    assert "context_length = 1024" in config.read_text()
    screen.key("ctrl+a")
    screen.type("2048")
    screen.key("Return")
    wait_for(lambda: field(app, "model.context_length")["message"]
             == "Saved; the model reloads with it on the next reply", 10, "the fixed value saved")
    assert "context_length = 2048" in config.read_text()


def test_open_data_folder_without_xdg_open_says_so(screen: Screen, start, home_with_model: Path,
                                                  tmp_path: Path) -> None:
    app = start("--no-tray", env={"PATH": str(tmp_path / "no-tools")})
    assert app.tray("Open data folder", click=True)["ok"]
    notice = wait_for(lambda: app.status().get("notice"), 15, "the notice")
    assert notice == (f"Cannot open {home_with_model}: no xdg-open or gio on this system "
                      "(install xdg-utils); open it from your file manager")
    assert notice in (home_with_model / "logs" / "rmm-tray.log").read_text()
    assert "Traceback" not in app.log_text()
    assert app.status()["ok"]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_narrow_popup_has_no_horizontal_scroll(screen: Screen, start, home_with_model: Path,
                                               theme: str, tmp_path: Path) -> None:
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write(f'[ui]\ntheme = "{theme}"\n')
    app = start("--no-tray")
    show_settings(screen, app)
    wid = popup_window(screen)
    screen.run("xdotool", "windowsize", wid, "360", "640")
    wait_for(lambda: app.probe("layout")["innerWidth"] == 360, 10, "the window at 360 px")
    assert app.probe("settings_view")["theme"] == theme
    for keys, view in ((None, "settings"), ("ctrl+m", "chat"), ("ctrl+m", "models")):
        if keys:
            screen.key(keys)
        layout = wait_for(lambda: (lambda lay: lay if lay["view"] == view else None)(app.probe("layout")),
                          10, f"the {view} view")
        screen.window_screenshot(wid, Path(SHOTS or tmp_path) / f"{view}-360-{theme}.png")
        assert layout["scrollWidth"] <= layout["innerWidth"], layout



def test_first_run_welcomes_once_and_suggests_instruct_models(screen: Screen, start, tmp_path: Path,
                                                              home_with_model: Path) -> None:
    app = start("--no-tray")
    app.cli("show")
    wid = popup_window(screen)
    shown = wait_for(lambda: app.probe("welcome")["welcome"], 10, "the welcome")
    screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "first-run-welcome.png")
    assert "Press Ctrl+Alt+Space anywhere to open or hide this chat." in shown
    assert "tiny base model" in shown
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the chat input")
    for _ in range(10):  # Shift+Tab back from the input to the welcome's button, as a person would
        if app.probe("focus") == "welcome-get":
            break
        screen.key("shift+Tab")
    screen.key("Return")
    suggested = wait_for(lambda: app.probe("welcome")["suggested"], 15, "the suggested models")
    assert app.probe("welcome")["view"] == "models"
    assert suggested[0]["repo"] == "Qwen/Qwen2.5-0.5B-Instruct-GGUF"
    assert {s["fit"] for s in suggested} <= {"fits", "tight", "too big"}
    assert "491.0 MB · Q4_K_M" in suggested[0]["text"]
    screen.window_screenshot(wid, Path(SHOTS or tmp_path) / "first-run-models.png")
    app.close()
    again = start("--no-tray")
    again.cli("show")
    popup_window(screen)
    wait_for(lambda: again.probe("focus") == "input", 10, "the popup ready")
    assert again.probe("welcome")["welcome"] is None, "the second start has no welcome"


def geometry(screen: Screen, wid: str) -> tuple[int, int, int, int]:
    info = screen.run("xwininfo", "-id", wid).stdout
    get = {k.strip(): int(v) for k, v in (line.split(":") for line in info.splitlines()
           if line.strip().startswith(("Absolute upper-left", "Width", "Height")))}
    return get["Absolute upper-left X"], get["Absolute upper-left Y"], get["Width"], get["Height"]


def test_the_popup_keeps_its_size_and_place_across_restarts(screen: Screen, start) -> None:
    app = start("--no-tray")
    app.cli("show")
    wid = popup_window(screen)
    first = geometry(screen, wid)
    screen.run("xdotool", "windowsize", wid, "420", "520")
    screen.run("xdotool", "windowmove", wid, "60", "50")
    moved = wait_for(lambda: (lambda g: g if g[2:] == (420, 520) and g[:2] != first[:2] else None)(
        geometry(screen, wid)), 10, "the window moved and resized")
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the chat input")
    screen.key("Escape")
    wait_for(lambda: not screen.visible_popups(), 10, "Esc to hide the popup")
    app.close()
    again = start("--no-tray")
    again.cli("show")
    wid = popup_window(screen)
    seen: list[tuple[int, int, int, int]] = []
    try:
        wait_for(lambda: seen.append(geometry(screen, wid)) or seen[-1] == moved, 10,
                 f"the popup back at {moved}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: it is at {seen[-1:]}; remembered "
                             f"{(again.home / 'state.json').read_text()!r}") from None


@pytest.mark.slow
def test_the_error_notice_clears_once_another_model_is_in_use(screen: Screen, start, tmp_path: Path,
                                                               home_with_model: Path) -> None:
    (home_with_model / "models" / "broken.gguf").write_text("nope")
    app = start("--no-tray")
    app.cli("show")
    popup_window(screen)
    options = wait_for(lambda: [o for o in app.probe("notice")["options"] if o["value"] != "broken.gguf"],
                       10, "the model picker")
    starter = options[0]
    assert starter["label"] == starter["value"].removesuffix(".gguf") and starter["title"] == starter["value"]
    app.tray("Model", "broken.gguf", click=True)
    notice = wait_for(lambda: app.probe("notice")["text"], 30, "the error notice")
    assert notice.startswith("broken.gguf: not a GGUF file") and app.probe("notice")["dismiss"]
    screen.window_screenshot(popup_window(screen), Path(SHOTS or tmp_path) / "error-notice.png")
    app.tray("Model", starter["value"], click=True)
    wait_for(lambda: app.status()["model"] == starter["value"], 60, "the starter loaded")
    wait_for(lambda: app.probe("notice")["text"] is None, 10, "the notice gone")


# -- Wayland: the GlobalShortcuts portal ------------------------------------------------


@pytest.fixture()
def session_bus():
    """A session bus of the test's own: on the screen's, GTK may have started this
    machine's real xdg-desktop-portal (which has no GlobalShortcuts backend)."""
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert bus.stdout is not None
    yield bus.stdout.readline().strip()
    bus.terminate()
    bus.wait(5)


@pytest.fixture()
def fake_portal(session_bus: str, tmp_path: Path):
    calls = tmp_path / "portal.jsonl"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "fake_portal.py"), str(calls)],
                            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": session_bus})
    wait_for(lambda: calls.exists() and "owned" in calls.read_text(), 10, "the portal on the bus")
    yield calls
    proc.terminate()
    proc.wait(5)


def press_portal_shortcut(bus: str, shortcut: str) -> None:
    subprocess.run(["gdbus", "call", "--session", "--dest", "org.freedesktop.portal.Desktop", "--object-path",
                    "/org/freedesktop/portal/desktop", "--method", "org.rmm.FakePortal.Press", shortcut],
                   env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus}, check=True, capture_output=True,
                   timeout=10)


def test_wayland_binds_the_hotkey_through_the_portal(screen: Screen, start, session_bus: str,
                                                     fake_portal: Path) -> None:
    import json

    # A Wayland session as the app judges it (pynput is never asked); the window
    # itself still goes to Xvfb, where the test can see it.
    app = start("--no-tray", env={"XDG_SESSION_TYPE": "wayland", "DBUS_SESSION_BUS_ADDRESS": session_bus})
    status = wait_for(lambda: (lambda s: s if s["hotkey"] else None)(app.status()), 15, "the portal binding")
    assert status["hotkey_problem"] is None
    calls = [json.loads(line) for line in fake_portal.read_text().splitlines()]
    [bind] = [c for c in calls if c["call"] == "BindShortcuts"]
    assert bind["shortcuts"] == [["toggle", {"description": "Show or hide the RunMyModel chat",
                                             "preferred_trigger": "CTRL+ALT+space"}]]
    assert app.tray("Open chat (Ctrl+Alt+Space)")["ok"]
    press_portal_shortcut(session_bus, "toggle")
    popup_window(screen)
    press_portal_shortcut(session_bus, "toggle")
    wait_for(lambda: not screen.visible_popups(), 10, "the second press to hide it")
    doctor = app.cli("doctor").stdout
    assert "ok    hotkey: Ctrl+Alt+Space through the desktop's GlobalShortcuts portal" in doctor


def test_wayland_without_a_portal_says_to_bind_toggle(screen: Screen, start, session_bus: str) -> None:
    app = start("--no-tray", env={"XDG_SESSION_TYPE": "wayland", "DBUS_SESSION_BUS_ADDRESS": session_bus})
    problem = wait_for(lambda: app.status()["hotkey_problem"], 15, "the hotkey's state")
    assert problem == ("this desktop offers no GlobalShortcuts portal; on Wayland, bind 'rmm-tray toggle' "
                       "as a desktop shortcut")
    assert app.tray("Open chat")["ok"]
    app.cli("toggle")
    popup_window(screen)
    assert "fix: bind 'rmm-tray toggle' as a desktop shortcut" in app.cli("doctor").stdout


# -- notifications ---------------------------------------------------------------------


@pytest.fixture()
def notifications(session_bus: str, tmp_path: Path):
    shown = tmp_path / "notifications.jsonl"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "fake_notifications.py"), str(shown)],
                            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": session_bus})
    wait_for(lambda: shown.exists() and "owned" in shown.read_text(), 10, "the notification server")

    def bodies() -> list[str]:
        import json

        return [n["body"] for n in map(json.loads, shown.read_text().splitlines()) if "body" in n]

    yield bodies
    proc.terminate()
    proc.wait(5)


def test_first_start_and_a_bad_hotkey_are_told_once_as_notifications(
        screen: Screen, start, session_bus: str, notifications, home_with_model: Path,
        tmp_path: Path) -> None:
    with (home_with_model / "config.toml").open("a") as fh:
        fh.write('[ui]\nhotkey = "<ctrl>+<foo>"\n')
    host = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
                             "--width", "64", "--height", "32"], env={**os.environ, **screen.env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        app = start(env={"DBUS_SESSION_BUS_ADDRESS": session_bus, "PATH": str(tmp_path / "no-tools")})
        wait_for(lambda: app.status()["tray"], 20, "the tray icon")
        wait_for(lambda: len(notifications()) >= 2, 20, "the first notifications")
        assert "RunMyModel is in the tray — click the icon to chat" in notifications()
        # A later notice, so the hotkey's had its chance to be told twice.
        app.tray("Open data folder", click=True)
        wait_for(lambda: any(b.startswith("Cannot open") for b in notifications()), 20, "the folder notice")
        off = [b for b in notifications() if b.startswith("The hotkey is off: ")]
        assert off == ["The hotkey is off: Hotkey: <foo> is not a key name (such as <ctrl>, <alt>, "
                       "<space>, <f5>)"]
    finally:
        host.terminate()
        host.wait(5)


def test_closing_the_window_hides_it_and_it_comes_back_working(screen: Screen, start) -> None:
    app = start("--no-tray")
    screen.run("xdotool", "mousemove", "5", "5")
    screen.key("ctrl+alt+space")
    popup_window(screen)
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the chat input")
    screen.key("alt+F4")  # the window manager's close: the popup hides, never dies
    wait_for(lambda: not screen.visible_popups(), 10, "the window closed")
    screen.key("ctrl+alt+space")
    popup_window(screen)
    wait_for(lambda: app.probe("focus") == "input", 10, "the page answering again")
    assert app.status()["popup_starts"] == 1
