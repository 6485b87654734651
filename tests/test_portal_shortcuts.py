"""The GlobalShortcuts session itself, against the fake portal on a private
session bus (tests/fake_portal.py, which keeps the spec's rules: one
BindShortcuts per session, a press activates only what a session bound):
the main hotkey and every prompt's in one BindShortcuts, each press handed to
its own id, and a changed set bound in a new session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from desktop_helpers import REPO, wait_for
from rmm_tray.shell import portal


@pytest.fixture()
def portal_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert bus.stdout is not None
    address = bus.stdout.readline().strip()
    # GIO keeps one session bus per process, made on first use: this test's is the private one.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    calls = tmp_path / "portal.jsonl"
    fake = subprocess.Popen([sys.executable, str(REPO / "tests" / "fake_portal.py"), str(calls)],
                            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address})
    wait_for(lambda: calls.exists() and "owned" in calls.read_text(), 10, "the portal on the bus")
    yield calls, address
    for proc in (fake, bus):
        proc.terminate()
        proc.wait(5)


def logged(calls: Path, what: str) -> list[dict]:
    return [c for c in map(json.loads, calls.read_text().splitlines()) if c["call"] == what]


def press(address: str, shortcut: str) -> None:
    subprocess.run(["gdbus", "call", "--session", "--dest", "org.freedesktop.portal.Desktop",
                    "--object-path", "/org/freedesktop/portal/desktop", "--method",
                    "org.rmm.FakePortal.Press", shortcut],
                   env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}, check=True,
                   capture_output=True, timeout=10)


def test_one_session_binds_every_shortcut_and_a_change_is_a_new_session(portal_log) -> None:
    calls, address = portal_log
    pressed: list[str] = []
    got = threading.Event()

    def on(shortcut_id: str) -> None:
        pressed.append(shortcut_id)
        got.set()

    shortcuts = portal.shortcuts_for("<ctrl>+<alt>+<space>",
                                     {"<ctrl>+<alt>+y": "translate", "<ctrl>+<alt>+u": "shout"},
                                     {"translate": "Into French"})
    first = portal.start(shortcuts, on)
    [bind] = logged(calls, "BindShortcuts")
    assert bind["shortcuts"] == [
        ["toggle", {"description": "Show or hide the RunMyModel chat",
                    "preferred_trigger": "CTRL+ALT+space"}],
        ["prompt:shout", {"description": "Run the RunMyModel prompt 'shout'",
                          "preferred_trigger": "CTRL+ALT+u"}],
        ["prompt:translate", {"description": "Run the RunMyModel prompt 'translate' — Into French",
                              "preferred_trigger": "CTRL+ALT+y"}],
    ]
    assert first.bound == {"toggle": "Press CTRL+ALT+space", "prompt:shout": "Press CTRL+ALT+u",
                           "prompt:translate": "Press CTRL+ALT+y"}
    press(address, "prompt:translate")
    assert got.wait(5) and pressed == ["prompt:translate"]

    # The prompts changed: the old session is closed, the new set bound in a new one.
    first.stop()
    second = portal.start(portal.shortcuts_for("<ctrl>+<alt>+<space>", {"<ctrl>+<alt>+k": "paste"}), on)
    assert [c["session"] for c in logged(calls, "Close")] == [logged(calls, "CreateSession")[0]["session"]]
    sessions = {c["session"] for c in logged(calls, "BindShortcuts")}
    assert len(sessions) == 2 and not logged(calls, "BindShortcuts refused")
    got.clear()
    press(address, "prompt:translate")  # no longer bound anywhere
    press(address, "prompt:paste")
    assert got.wait(5) and pressed == ["prompt:translate", "prompt:paste"]
    second.stop()
