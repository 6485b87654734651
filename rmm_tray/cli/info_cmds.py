"""`rmm-tray prompts`, `chats` and `plugins`: read-only views."""

from __future__ import annotations

import argparse
import re
from typing import Any

from rmm_tray.app import App
from rmm_tray.cli.output import print_json, print_table


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("prompts", help="prompt templates")
    psub = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    ls = psub.add_parser("list", help="all templates and where they come from")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=prompts_list)
    show = psub.add_parser("show", help="one template in full")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=prompts_show)

    # `chats` has its own module too, chats_cmd.
    pl = sub.add_parser("plugins", help="loaded plugins and their status")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(run=plugins_list)


def _template_dict(t: Any) -> dict[str, Any]:
    return {"name": t.name, "description": t.description, "source": t.source,
            "variables": t.variables, "system": t.system, "body": t.body}


def prompts_list(args: argparse.Namespace) -> int:
    templates = sorted(App.open(safe_mode=args.safe_mode).templates().values(),
                       key=lambda t: t.name)
    if args.json:
        print_json([_template_dict(t) for t in templates])
    else:
        print_table(["NAME", "VARIABLES", "SOURCE", "DESCRIPTION"],
                    [[t.name, ",".join(t.variables), t.source, t.description] for t in templates])
    return 0


def prompts_show(args: argparse.Namespace) -> int:
    t = App.open(safe_mode=args.safe_mode).template(args.name)
    if args.json:
        print_json(_template_dict(t))
        return 0
    print(f"# {t.name} ({t.source})")
    if t.description:
        print(t.description)
    if t.system:
        print(f"\n[system]\n{t.system}")
    print(f"\n[body]\n{t.body}")
    return 0


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
