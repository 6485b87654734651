"""`rmm-tray plugins`: a read-only view; `terminal_safe` for any text printed raw."""

from __future__ import annotations

import argparse
import re
from typing import Any

from rmm_tray.cli.output import print_json, print_table


def add_parsers(sub: Any) -> None:
    # `prompts` has its own module, prompts_cmd.
    # `chats` has its own module too, chats_cmd.
    pl = sub.add_parser("plugins", help="loaded plugins and their status")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(run=plugins_list)


# Control characters (C0, DEL, C1) and the bidirectional overrides: stored text
# printed raw could drive the terminal (OSC 52 writes its clipboard) or disguise
# itself. Shown as visible escapes; --json keeps the exact text.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\n\t]")


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` for a terminal: control characters as escapes such as ``\\x1b``;
    only newline and tab pass (and not even those when ``one_line``)."""
    def escape(m: re.Match[str]) -> str:
        c = m.group()
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
    text = _CONTROLS.sub(escape, str(text))
    return _LINE_BREAKS.sub(escape, text) if one_line else text


def plugins_list(args: argparse.Namespace) -> int:
    from rmm_tray.app import App

    app = App.open(safe_mode=args.safe_mode)
    # Calling the registration hooks once shows plugins that fail (or hang) inside them.
    app.templates()
    app.sources()
    app.plugins.collect("register_history_backends", lambda o: True, "", app=app)
    # Every plugin tried, those refused for a name already taken included.
    infos = list(app.plugins.tried)
    if args.json:
        print_json([i.to_dict() for i in infos])
        return 0
    print_table(["NAME", "VERSION", "FROM", "HOOKS", "STATUS"],
                [[i.name, i.version, i.source, ",".join(i.hooks), i.status] for i in infos])
    return 0
