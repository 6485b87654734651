"""A virtual screen, a D-Bus session and a running app, for the desktop tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rmm_tray.desktop import ipc

REPO = Path(__file__).resolve().parent.parent


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (ipc.IPCError, OSError, EOFError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Screen:
    """Xvfb on a display number it picks itself, and a D-Bus session bus."""

    def __init__(self) -> None:
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.xvfb.stdout is not None
        self.display = ":" + self.xvfb.stdout.readline().strip()
        self.dbus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.dbus.stdout is not None
        self.bus = self.dbus.stdout.readline().strip()
        self.env = {"DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": self.bus}
        # A window manager, as every desktop has: focus and "bring to front" go through it.
        self.wm = subprocess.Popen(["openbox", "--sm-disable"], env={**os.environ, **self.env},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), env={**os.environ, **self.env}, capture_output=True,
                              text=True, check=check, timeout=60)

    def key(self, *keys: str) -> None:
        self.run("xdotool", "key", "--clearmodifiers", *keys)

    def type(self, text: str) -> None:
        self.run("xdotool", "type", "--delay", "15", text)

    def visible_popups(self) -> list[str]:
        out = self.run("xdotool", "search", "--onlyvisible", "--name", "^RunMyModel$", check=False)
        return out.stdout.split()

    def screenshot(self, path: Path, box: tuple[int, int, int, int] | None = None) -> Path:
        from PIL import ImageGrab

        image = ImageGrab.grab(xdisplay=self.display)
        (image.crop(box) if box else image).save(path)
        return path

    def window_screenshot(self, wid: str, path: Path) -> Path:
        """A picture of one window, where xwininfo says it is on the screen."""
        time.sleep(0.8)  # for the picture only: the X server draws the new layout a moment later
        info = self.run("xwininfo", "-id", wid).stdout
        get = {k.strip(): int(v) for k, v in (line.split(":") for line in info.splitlines()
               if line.strip().startswith(("Absolute upper-left", "Width", "Height")))}
        x, y = get["Absolute upper-left X"], get["Absolute upper-left Y"]
        return self.screenshot(path, (x, y, x + get["Width"], y + get["Height"]))

    def close(self) -> None:
        for proc in (self.wm, self.dbus, self.xvfb):
            proc.terminate()
            proc.wait(5)


class RunningApp:
    def __init__(self, screen: Screen, home: Path, *args: str) -> None:
        self.screen = screen
        self.home = home
        self.log = (home / "logs" / "test-app.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rmm_tray", "start", *args],
            env={**os.environ, **screen.env, "RMM_HOME": str(home)}, cwd=REPO,
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.status().get("popup_connected"), 60, "the popup to connect")

    def status(self) -> dict[str, Any]:
        return ipc.request(self.home, {"cmd": "status"})

    def probe(self, what: str) -> Any:
        return ipc.request(self.home, {"cmd": "probe", "what": what})["result"]

    def tray(self, *path: str, click: bool = False) -> dict[str, Any]:
        return ipc.request(self.home, {"cmd": "tray", "path": list(path), "click": click})

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rmm_tray", *args], capture_output=True,
                              text=True, timeout=60, cwd=REPO,
                              env={**os.environ, **self.screen.env, "RMM_HOME": str(self.home)})

    def log_text(self) -> str:
        self.log.flush()
        return (self.home / "logs" / "test-app.log").read_text()

    def close(self) -> None:
        try:
            ipc.request(self.home, {"cmd": "quit"})
            self.proc.wait(15)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
