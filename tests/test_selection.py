"""Reading the selection and the clipboard on Wayland (rmm_tray/desktop/selection.py).

A Wayland compositor with a seat cannot run here (weston's headless backend has
none, sway refuses to run as root), so the tools are stand-ins on PATH that
answer as wl-clipboard 2.1 and xclip do, their messages copied from the real
binaries. The X11 path runs against the real xclip in the desktop tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rmm_tray.desktop import selection

# wl-paste's own words (`strings $(which wl-paste)`, wl-clipboard 2.1.0).
NO_PRIMARY = "The compositor does not seem to support primary selection"
NO_SEAT = "Missing a seat"

TOOL = """#!/bin/sh
# $1...: the arguments; PRIMARY / CLIPBOARD: what to answer ("!message" fails with it).
case " $* " in *" --primary "*|*" primary "*) v="$PRIMARY" ;; *) v="$CLIPBOARD" ;; esac
case "$v" in "!"*) echo "${v#!}" >&2; exit 1 ;; esac
printf %s "$v"
"""


@pytest.fixture()
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def install(*names: str) -> None:
        for name in names:
            path = bin_dir / name
            path.write_text(TOOL)
            path.chmod(path.stat().st_mode | stat.S_IXUSR)

    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-test")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(selection, "_fallback_told", False)
    return install


def test_the_primary_selection_is_read_where_the_compositor_offers_it(tools, monkeypatch) -> None:
    tools("wl-paste")
    monkeypatch.setenv("PRIMARY", "selected words")
    monkeypatch.setenv("CLIPBOARD", "copied words")
    got = selection.capture()
    assert (got.selection, got.clipboard, got.notice, got.from_clipboard) == (
        "selected words", "copied words", "", False)


def test_without_primary_selection_the_clipboard_stands_in_and_says_so_once(tools, monkeypatch) -> None:
    tools("wl-paste")
    monkeypatch.setenv("PRIMARY", "!" + NO_PRIMARY)
    monkeypatch.setenv("CLIPBOARD", "copied words")
    first = selection.capture()
    assert first.selection == "copied words" and first.from_clipboard
    assert first.notice == ("This desktop does not let apps read the selected text: the clipboard "
                            "is used instead (copy the text before pressing the hotkey)")
    again = selection.capture()
    assert again.selection == "copied words" and again.notice == ""


def test_xwayland_reads_the_primary_selection_wl_paste_cannot(tools, monkeypatch) -> None:
    tools("wl-paste", "xclip")
    monkeypatch.setenv("DISPLAY", ":9")
    monkeypatch.setenv("PRIMARY", "!" + NO_PRIMARY)
    monkeypatch.setenv("CLIPBOARD", "copied words")
    real = selection._commands

    def answers(which: str) -> list[list[str]]:
        # xclip through XWayland has the selection the Wayland side would not give.
        cmds = real(which)
        return [c if c[0] != "xclip" else ["env", "PRIMARY=from XWayland", *c] for c in cmds]

    monkeypatch.setattr(selection, "_commands", answers)
    monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + "/usr/bin" + os.pathsep + "/bin")
    got = selection.capture()
    assert (got.selection, got.from_clipboard, got.notice) == ("from XWayland", False, "")


def test_a_compositor_without_a_seat_gives_neither_and_says_why(tools, monkeypatch) -> None:
    tools("wl-paste")
    monkeypatch.setenv("PRIMARY", "!" + NO_SEAT)
    monkeypatch.setenv("CLIPBOARD", "!" + NO_SEAT)
    got = selection.capture()
    assert got.selection is None and got.clipboard is None and got.from_clipboard
    assert got.notice.endswith("; this desktop does not let apps read the clipboard")


def test_nothing_copied_is_an_empty_clipboard_not_an_error(tools, monkeypatch) -> None:
    tools("wl-paste")
    monkeypatch.setenv("PRIMARY", "selected")
    monkeypatch.setenv("CLIPBOARD", "!Nothing is copied")
    got = selection.capture()
    assert (got.selection, got.clipboard, got.notice) == ("selected", "", "")


def test_no_tool_at_all_says_which_to_install(tools, monkeypatch) -> None:
    got = selection.capture()
    assert got.selection is None
    assert "install wl-paste" in got.notice
