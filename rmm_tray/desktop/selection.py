"""The desktop's selected text and clipboard, read the moment a prompt's hotkey
is pressed, before the popup takes the focus (and with it, on X11, often the
selection). Through the desktop's own tools: ``xclip``/``xsel`` on X11,
``wl-paste`` on Wayland; no GUI toolkit in the core process.

On Wayland, wl-paste reads the primary selection without the focus where the
compositor offers a data-control protocol (wlroots, KDE); on others it says
primary selection is not supported, and then xclip reads it through XWayland,
which keeps X11's PRIMARY in step with the Wayland one. Where neither can, a
prompt's hotkey (a portal shortcut, or `rmm-tray prompt run`) uses the clipboard
instead, and says so once per run."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: What a person is told (once per run) when the selection cannot be read here.
FALLBACK_NOTICE = ("this desktop does not let apps read the selected text: the clipboard is used "
                   "instead (copy the text before pressing the hotkey)")
_fallback_told = False

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
    #: The desktop offers no way to read the selection: ``selection`` holds the clipboard.
    from_clipboard: bool = False


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


#: What the tools print (lower-cased) when this desktop cannot give them the selection.
UNSUPPORTED = (b"not supported", b"not seem to support", b"without primary selection",
               b"missing a seat", b"no such seat", b"seat has no keyboard")


class Unsupported(Exception):
    """The desktop has no way for us to read this selection."""


def read(which: str) -> tuple[str | None, bool, str]:
    """(text or None, whether it was cut, why not) for "primary" or "clipboard"."""
    try:
        return _read(which)
    except Unsupported as exc:
        return None, False, str(exc)


def _read(which: str) -> tuple[str | None, bool, str]:
    commands = _commands(which)
    if not commands:
        tool = "wl-paste" if os.environ.get("WAYLAND_DISPLAY") else "xclip or xsel"
        return None, False, f"the {_label(which)} cannot be read: install {tool}"
    unsupported = 0
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
        err = done.stderr.lower()
        # wl-paste on a compositor without the primary selection protocol, or one
        # that gives it no seat (wl-clipboard 2.1 says "The compositor does not
        # seem to support primary selection", "Missing a seat"): the next tool may
        # still read it through XWayland.
        if any(words in err for words in UNSUPPORTED):
            log.debug("%s: %s", cmd[0], done.stderr.decode(errors="replace").strip())
            unsupported += 1
            continue
        # xclip exits 1 when there is no selection at all: that is an empty one.
        if b"no" in err or b"target" in err:
            return "", False, ""
    if unsupported == len(commands):
        raise Unsupported(f"this desktop does not let apps read the {_label(which)}")
    return "", False, ""


def _label(which: str) -> str:
    return "selection" if which == "primary" else "clipboard"


def capture(*, selection: bool = True, clipboard: bool = True) -> Captured:
    global _fallback_told
    from_clipboard = False
    try:
        sel, cut, why_sel = _read("primary") if selection else (None, False, "")
    except Unsupported:
        sel, cut, why_sel, from_clipboard = None, False, "", True
    clip, clip_cut, why_clip = read("clipboard") if clipboard or from_clipboard else (None, False, "")
    if from_clipboard:
        sel, cut = clip, clip_cut
        if not _fallback_told:  # once per run: the same words at every press would be noise
            _fallback_told = True
            log.warning("%s", FALLBACK_NOTICE)
            why_sel = FALLBACK_NOTICE[0].upper() + FALLBACK_NOTICE[1:]
    notice = "; ".join(w for w in (why_sel, why_clip) if w)
    return Captured(sel, clip if clipboard else None, notice, cut, from_clipboard)
