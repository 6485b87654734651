"""The desktop's selected text and clipboard, read the moment a prompt's hotkey
is pressed, before the popup takes the focus (and with it, on X11, often the
selection). Through the desktop's own tools: ``xclip``/``xsel`` on X11,
``wl-paste`` on Wayland; no GUI toolkit in the core process."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: A tool that does not answer within this is treated as "nothing selected".
READ_TIMEOUT_S = 1.0
#: More than this is not a selection a prompt can use whole; the rest is cut
#: (and the form says so) rather than held in memory.
MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class Captured:
    selection: str | None
    clipboard: str | None
    #: Why a value could not be read ("" when both were), for the form's notice.
    notice: str = ""
    #: The selection was longer than MAX_BYTES and was cut.
    cut: bool = False


def _commands(which: str) -> list[list[str]]:
    """Commands that print the PRIMARY selection or the clipboard, best first."""
    wayland = bool(os.environ.get("WAYLAND_DISPLAY"))
    primary = which == "primary"
    out: list[list[str]] = []
    if wayland:
        out.append(["wl-paste", "--no-newline", *(["--primary"] if primary else [])])
    if os.environ.get("DISPLAY"):
        out.append(["xclip", "-o", "-selection", "primary" if primary else "clipboard"])
        out.append(["xsel", "--primary" if primary else "--clipboard", "--output"])
    return [c for c in out if shutil.which(c[0])]


def read(which: str) -> tuple[str | None, bool, str]:
    """(text or None, whether it was cut, why not) for "primary" or "clipboard"."""
    commands = _commands(which)
    if not commands:
        tool = "wl-paste" if os.environ.get("WAYLAND_DISPLAY") else "xclip or xsel"
        return None, False, f"the {_label(which)} cannot be read: install {tool}"
    for cmd in commands:
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=READ_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.debug("%s: %s", cmd[0], exc)
            continue
        if done.returncode == 0:
            data = done.stdout
            cut = len(data) > MAX_BYTES
            return data[:MAX_BYTES].decode("utf-8", errors="replace"), cut, ""
        # xclip exits 1 when there is no selection at all: that is an empty one.
        if b"no" in done.stderr.lower() or b"target" in done.stderr.lower():
            return "", False, ""
    return "", False, ""


def _label(which: str) -> str:
    return "selection" if which == "primary" else "clipboard"


def capture(*, selection: bool = True, clipboard: bool = True) -> Captured:
    sel, cut, why_sel = read("primary") if selection else (None, False, "")
    clip, _, why_clip = read("clipboard") if clipboard else (None, False, "")
    notice = "; ".join(w for w in (why_sel, why_clip) if w)
    return Captured(sel, clip, notice, cut)
