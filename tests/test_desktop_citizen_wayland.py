"""The app in a Wayland session, under a headless compositor (Debian's weston):
it starts without the X11 keyboard listener, says to bind `rmm-tray toggle`
where no GlobalShortcuts portal exists, `rmm-tray toggle` shows the popup (the
compositor's own screenshot shows it), and a prompt sent from the popup's page
is answered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_helpers import REPO, wait_for
from rmm_tray.desktop import ipc

# weston comes with scripts/system-deps.sh; without it these tests fail, they do not skip.
pytestmark = pytest.mark.desktop


@pytest.fixture()
def wayland(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # The app's IPC endpoint lives in the runtime directory: the test talks to it there too.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    socket = "wayland-rmm-test"
    env = {"XDG_RUNTIME_DIR": str(runtime), "WAYLAND_DISPLAY": socket}
    weston = subprocess.Popen(
        ["weston", "--backend=headless-backend.so", "--use-pixman", f"--socket={socket}", "--idle-time=0",
         "--debug", "--width=1280", "--height=800"],  # --debug: the screenshooter protocol
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert bus.stdout is not None
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
    wait_for(lambda: (runtime / socket).exists(), 15, "the compositor's socket")
    yield env
    for proc in (bus, weston):
        proc.terminate()
        proc.wait(5)


def popup_on_screen(env: dict[str, str], folder: Path) -> bool:
    """The compositor's screenshot holds the popup's header (its gradient)."""
    from PIL import Image

    for old in folder.glob("wayland-screenshot-*.png"):
        old.unlink()
    subprocess.run(["weston-screenshooter"], env={**os.environ, **env}, cwd=folder, timeout=20,
                   capture_output=True)
    shots = list(folder.glob("wayland-screenshot-*.png"))
    if not shots:
        return False
    image = Image.open(shots[0]).convert("RGB").resize((320, 200))
    colours = image.getcolors(320 * 200) or []
    return sum(n for n, (r, g, b) in colours if r > 90 and b > 200 and g < 110) > 100


@pytest.mark.slow
def test_under_weston_toggle_shows_the_popup_and_a_prompt_is_answered(
        wayland: dict[str, str], home_with_model: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env.update(wayland, RMM_HOME=str(home_with_model), GDK_BACKEND="wayland")
    log = (home_with_model / "logs" / "wayland-app.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "rmm_tray", "start", "--no-tray"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        status = wait_for(lambda: (lambda s: s if s.get("popup_connected") else None)(
            ipc.request(home_with_model, {"cmd": "status"})), 90, "the popup to connect")
        assert status["hotkey"] is False
        wait_for(lambda: ipc.request(home_with_model, {"cmd": "status"})["hotkey_problem"], 15, "the hotkey")
        assert ipc.request(home_with_model, {"cmd": "status"})["hotkey_problem"].endswith(
            "on Wayland, bind 'rmm-tray toggle' as a desktop shortcut")
        assert not popup_on_screen(wayland, tmp_path), "created hidden"
        toggle = subprocess.run([sys.executable, "-m", "rmm_tray", "toggle"], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert toggle.returncode == 0, toggle.stderr
        wait_for(lambda: popup_on_screen(wayland, tmp_path), 30, "the popup in the compositor's screenshot")
        # What the page's Send does: its call, through the core's own js path.
        conn = ipc.connect(home_with_model)
        with conn:
            ipc.send_json(conn, {"cmd": "js", "method": "send", "args": ["Hello there"]})

        def answered() -> list | None:
            msgs = ipc.request(home_with_model, {"cmd": "probe", "what": "messages"})["result"]
            done = msgs and msgs[-1]["role"] == "assistant" and not msgs[-1]["streaming"]
            return msgs if done and msgs[-1]["text"].strip() else None

        msgs = wait_for(answered, 90, "the reply in the page")
        assert msgs[-2]["text"] == "Hello there"
    finally:
        try:
            ipc.request(home_with_model, {"cmd": "quit"})
            proc.wait(15)
        except Exception:
            proc.kill()
            proc.wait(5)
        log.close()
