"""`rmm-tray start` and the remote controls `toggle|show|hide|quit`.

`start` imports the desktop shell only when it runs; the remote controls only
talk to the running app over IPC and stay headless (the Wayland path)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("start", help="start the tray app (what plain `rmm-tray` does on a desktop)")
    p.add_argument("--no-hotkey", action="store_true", help="do not listen for the global hotkey")
    p.add_argument("--no-tray", action="store_true", help="no tray icon (the popup still works)")
    p.set_defaults(run=run_start)
    for name, text in (("toggle", "show the chat if hidden, hide it if shown"),
                       ("show", "show the chat"), ("hide", "hide the chat"),
                       ("quit", "quit the running app")):
        c = sub.add_parser(name, help=text)
        c.set_defaults(run=run_remote, remote=name)


def has_desktop() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_start(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.shell.desktop import DesktopApp

    app = App.open(safe_mode=args.safe_mode)
    return DesktopApp(app, use_hotkey=not args.no_hotkey, use_tray=not args.no_tray).run()


def run_remote(args: argparse.Namespace) -> int:
    from rmm_tray.desktop import ipc
    from rmm_tray.home.paths import DataHome

    ipc.request(DataHome.from_env().root, {"cmd": args.remote})
    return 0
