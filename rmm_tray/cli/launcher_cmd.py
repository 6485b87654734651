"""`rmm-tray desktop install [--autostart] | uninstall`: the launcher entry, its
icon and, if asked, starting at login (desktop/launcher.py)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("desktop", help="add the app to the desktop's launcher (and start at login)")
    dsub = p.add_subparsers(dest="desktop_command", metavar="ACTION", required=True)
    inst = dsub.add_parser("install", help="a launcher entry and icon for this installation")
    inst.add_argument("--autostart", action="store_true", help="also start the app at login")
    inst.set_defaults(run=run_install)
    un = dsub.add_parser("uninstall", help="remove the launcher entry, the icon and autostart")
    un.set_defaults(run=run_uninstall)


def run_install(args: argparse.Namespace) -> int:
    from rmm_tray.desktop import launcher

    launcher.install(autostart=args.autostart)
    print(f"launcher: {launcher.launcher_path()}")
    print(f"icon: {launcher.icon_paths()[0].parent.parent.parent}/*/apps/{launcher.ICON}.*")
    if args.autostart:
        print(f"starts at login: {launcher.autostart_path()}")
    print(f"runs: {launcher.shown_command()}")
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    from rmm_tray.desktop import launcher

    removed = launcher.uninstall()
    print(f"removed {len(removed.files)} file(s)" if removed.files else "nothing was installed")
    return 0
