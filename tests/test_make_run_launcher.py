"""`make run` offers the launcher once: asked on a terminal, told in one line
elsewhere, never blocking, and not again after that."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.integration

SCRIPT = REPO / "scripts" / "offer-launcher.sh"
RMM = str(Path(sys.executable).parent / "rmm-tray")


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_DATA_HOME", "XDG_STATE_HOME",
                                                              "XDG_CONFIG_HOME", "WAYLAND_DISPLAY")}
    return {**env, "HOME": str(tmp_path), "DISPLAY": ":99", "RMM_HOME": str(tmp_path / "rmm")}


def test_make_run_offers_the_launcher_before_starting() -> None:
    plan = subprocess.run(["make", "-n", "run"], cwd=REPO, capture_output=True, text=True, timeout=60)
    lines = plan.stdout.splitlines()
    offer = next(i for i, line in enumerate(lines) if "scripts/offer-launcher.sh" in line)
    assert lines[offer + 1].strip().endswith("/rmm-tray")


def test_without_a_terminal_it_says_the_command_once_and_never_waits(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    first = subprocess.run(["sh", str(SCRIPT), RMM], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
    assert first.returncode == 0
    assert first.stdout.splitlines() == [
        "Tip: 'rmm-tray desktop install' adds RunMyModel to your app launcher "
        "(--autostart: start at login)."]
    again = subprocess.run(["sh", str(SCRIPT), RMM], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
    assert (again.returncode, again.stdout) == (0, "")
    assert not (tmp_path / ".local" / "share" / "applications" / "RunMyModel.desktop").exists()


def test_off_a_desktop_it_says_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in env_for(tmp_path).items() if k != "DISPLAY"}
    out = subprocess.run(["sh", str(SCRIPT), RMM], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=10)
    assert (out.returncode, out.stdout) == (0, "")
    assert not (tmp_path / ".local" / "state" / "rmm-tray").exists(), "still offered on a desktop later"


def talk(tmp_path: Path, answer: bytes) -> str:
    """The script on a terminal (a pty), answering its question."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/bin/sh", ["sh", str(SCRIPT), RMM], env_for(tmp_path))
    out = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not answered and b"[y/N]" in out:
            os.write(fd, answer)
            answered = True
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return out.decode(errors="replace")


def test_on_a_terminal_yes_installs_the_launcher_and_it_is_not_asked_again(tmp_path: Path) -> None:
    shown = talk(tmp_path, b"y\n")
    assert "Add RunMyModel to your app launcher (rmm-tray desktop install)? [y/N]" in shown
    assert (tmp_path / ".local" / "share" / "applications" / "RunMyModel.desktop").is_file()
    again = subprocess.run(["sh", str(SCRIPT), RMM], env=env_for(tmp_path), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
    assert again.stdout == ""


def test_on_a_terminal_no_leaves_it_and_says_how(tmp_path: Path) -> None:
    shown = talk(tmp_path, b"n\n")
    assert "Not now. Any time: rmm-tray desktop install [--autostart]" in shown
    assert not (tmp_path / ".local" / "share" / "applications" / "RunMyModel.desktop").exists()
    assert subprocess.run(["sh", str(SCRIPT), RMM], env=env_for(tmp_path), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=10).stdout == ""
