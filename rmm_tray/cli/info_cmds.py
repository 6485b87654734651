"""`rmm-tray prompts`, `chats` and `plugins`: read-only views."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from dataclasses import asdict
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

    c = sub.add_parser("chats", help="chat history")
    csub = c.add_subparsers(dest="chats_command", metavar="ACTION", required=True)
    ls = csub.add_parser("list", help="chats, newest first")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=chats_list)
    show = csub.add_parser("show", help="one chat's messages")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=chats_show)

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


def _when(ts: float) -> str:
    try:
        return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError, TypeError):  # a backend's odd time
        return "?"


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


def chats_list(args: argparse.Namespace) -> int:
    chats = App.open(safe_mode=args.safe_mode).history.list_chats()
    if args.json:
        print_json([asdict(c) for c in chats])
    else:
        print_table(["ID", "UPDATED", "MESSAGES", "TITLE"],
                    [[terminal_safe(c.id, one_line=True), _when(c.updated), c.messages,
                      terminal_safe(c.title, one_line=True)] for c in chats])
    return 0


def chats_show(args: argparse.Namespace) -> int:
    chat = App.open(safe_mode=args.safe_mode).history.load_chat(args.id)
    if args.json:
        print_json({"id": chat.id, "title": chat.title, "created": chat.created,
                    "model": chat.model, "skipped_lines": chat.skipped_lines,
                    "messages": [m.to_dict() | {"interrupted": m.interrupted}
                                 for m in chat.messages]})
        return 0
    title = terminal_safe(chat.title or chat.id, one_line=True)
    print(f"# {title}  ({terminal_safe(chat.id, one_line=True)}, {_when(chat.created)})")
    for m in chat.messages:
        mark = " [interrupted]" if m.interrupted else ""
        print(f"\n{terminal_safe(m.role, one_line=True)}{mark}:\n{terminal_safe(m.content)}")
    if chat.skipped_lines:
        print(f"\n({chat.skipped_lines} unreadable line(s) skipped; see the log)")
    return 0


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
