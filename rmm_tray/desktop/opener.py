"""Opening a folder or a file in the person's own app: xdg-open, else GIO's
`gio open` (present wherever GLib is, even on systems without xdg-utils), else
a one-line error for the caller to show. Never a traceback on a terminal nobody sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from rmm_tray.errors import RmmError

#: An opener that has not exited by then has started the app (some stay until it closes).
WAIT_S = 10.0


class CannotOpen(RmmError):
    pass


def openers() -> list[list[str]]:
    if sys.platform == "darwin":
        return [["open"]]
    return [cmd for cmd in (["xdg-open"], ["gio", "open"]) if shutil.which(cmd[0])]


def open_path(path: Path) -> None:
    """Open ``path``, waiting a little for the opener's verdict; CannotOpen when
    no opener is installed or each one failed."""
    if sys.platform == "win32":
        os.startfile(str(path))  # type: ignore[attr-defined]
        return
    tried = []
    for cmd in openers():
        try:
            proc = subprocess.Popen([*cmd, str(path)], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            tried.append(f"{cmd[0]}: {exc.strerror}")
            continue
        try:
            _, err = proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            return
        if proc.returncode == 0:
            return
        reason = (err or b"").decode(errors="replace").strip().splitlines()
        tried.append(f"{cmd[0]}: {reason[-1] if reason else f'exit code {proc.returncode}'}")
    if not tried:
        raise CannotOpen(f"Cannot open {path}: no xdg-open or gio on this system "
                         "(install xdg-utils); open it from your file manager")
    raise CannotOpen(f"Cannot open {path} ({'; '.join(tried)})")
