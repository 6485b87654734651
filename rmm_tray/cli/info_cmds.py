"""`rmm-tray prompts`, `chats` and `plugins`: read-only views."""

from __future__ import annotations

import argparse
import datetime as dt
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
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def chats_list(args: argparse.Namespace) -> int:
    chats = App.open(safe_mode=args.safe_mode).history.list_chats()
    if args.json:
        print_json([asdict(c) for c in chats])
    else:
        print_table(["ID", "UPDATED", "MESSAGES", "TITLE"],
                    [[c.id, _when(c.updated), c.messages, c.title] for c in chats])
    return 0


def chats_show(args: argparse.Namespace) -> int:
    chat = App.open(safe_mode=args.safe_mode).history.load_chat(args.id)
    if args.json:
        print_json({"id": chat.id, "title": chat.title, "created": chat.created,
                    "model": chat.model, "skipped_lines": chat.skipped_lines,
                    "messages": [m.to_dict() | {"interrupted": m.interrupted}
                                 for m in chat.messages]})
        return 0
    print(f"# {chat.title or chat.id}  ({chat.id}, {_when(chat.created)})")
    for m in chat.messages:
        mark = " [interrupted]" if m.interrupted else ""
        print(f"\n{m.role}{mark}:\n{m.content}")
    return 0


def plugins_list(args: argparse.Namespace) -> int:
    app = App.open(safe_mode=args.safe_mode)
    infos = list(app.plugins.infos.values())
    # Calling the registration hooks once shows plugins that fail inside them.
    app.templates()
    app.sources()
    app.plugins.collect("register_history_backends", lambda o: True, "", app=app)
    if args.json:
        print_json([i.to_dict() for i in infos])
        return 0
    print_table(["NAME", "VERSION", "FROM", "HOOKS", "STATUS"],
                [[i.name, i.version, i.source, ",".join(i.hooks), i.status] for i in infos])
    return 0
