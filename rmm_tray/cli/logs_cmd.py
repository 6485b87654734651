"""`rmm-tray logs [-f] [--lines N]`: the app's log (logs/rmm-tray.log)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("logs", help="show the app's log: warnings and errors of the tray, "
                       "the popup and plugins")
    p.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="last N lines (50)")
    p.add_argument("-f", "--follow", action="store_true", help="keep showing new lines")
    p.add_argument("--path", action="store_true", help="print where the log is, and nothing else")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rmm_tray.home import logs
    from rmm_tray.home.paths import DataHome

    path = logs.log_file(DataHome.from_env().root)
    if args.path:
        print(path)
        return 0
    lines = logs.tail(path, args.lines)
    if not lines and not args.follow:
        print(f"nothing logged yet ({path})", file=sys.stderr)
    for line in lines:
        print(line)
    if args.follow:
        sys.stdout.flush()
        for line in logs.follow(path):
            print(line, flush=True)
    return 0
