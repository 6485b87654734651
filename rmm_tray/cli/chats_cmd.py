"""`rmm-tray chats`: list, show, search, rename, pin, delete and restore, export,
import and migrate the chat history. Titles are one line everywhere; text printed
to a terminal cannot drive it (--json keeps the exact text)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rmm_tray.cli.info_cmds import terminal_safe
from rmm_tray.cli.output import print_json, print_table
from rmm_tray.errors import RmmError


class ChatsUsage(RmmError):
    """A chats command that cannot be done as typed (a bad date, no chat named)."""


def add_parser(sub: Any) -> None:
    from rmm_tray.cli import wanted_actions

    c = sub.add_parser("chats", help="chat history: list, search, rename, export, import...")
    csub = c.add_subparsers(dest="chats_command", metavar="ACTION", required=True)
    # Only the action named is built: a quick `chats search` does not pay for the rest.
    for name in wanted_actions("chats", list(_ACTIONS)):
        _ACTIONS[name](csub, name)


def _list(csub: Any, name: str) -> None:
    ls = csub.add_parser(name, help="chats, newest first")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--limit", type=_positive, metavar="N")
    ls.add_argument("--source", choices=("popup", "cli", "api", "import"))
    ls.add_argument("--trash", action="store_true", help="the chats in the trash instead")
    ls.set_defaults(run=chats_list)


def _show(csub: Any, name: str) -> None:
    show = csub.add_parser(name, help="one chat's messages")
    show.add_argument("id", metavar="ID|last")
    show.add_argument("--json", action="store_true")
    show.add_argument("--all-versions", action="store_true",
                      help="every version of every message, not only the branch shown")
    show.set_defaults(run=chats_show)


def _search(csub: Any, name: str) -> None:
    se = csub.add_parser(name, help="chats whose title or messages have every word")
    se.add_argument("query")
    se.add_argument("--json", action="store_true")
    se.add_argument("--model", metavar="M", help="only chats with this model")
    se.add_argument("--since", metavar="DATE", type=_date, help="updated on or after (YYYY-MM-DD)")
    se.add_argument("--pinned", action="store_true", help="only pinned chats")
    se.add_argument("--limit", type=_positive, default=50, metavar="N")
    se.set_defaults(run=chats_search)


def _rename(csub: Any, name: str) -> None:
    rn = csub.add_parser(name, help="give a chat a title (one line)")
    rn.add_argument("id", metavar="ID|last")
    rn.add_argument("title")
    rn.set_defaults(run=chats_rename)


def _pin(csub: Any, name: str) -> None:
    p = csub.add_parser(name, help=f"{name} a chat (pinned chats come first in the popup)")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(run=chats_pin, pinned=name == "pin")


def _rm(csub: Any, name: str) -> None:
    rm = csub.add_parser(name, help="move chats to the trash ('chats restore' brings them back)")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.add_argument("--purge", action="store_true", help="remove them for good instead")
    rm.set_defaults(run=chats_rm)


def _restore(csub: Any, name: str) -> None:
    rs = csub.add_parser(name, help="bring chats back from the trash")
    rs.add_argument("ids", nargs="+", metavar="ID")
    rs.set_defaults(run=chats_restore)


def _export(csub: Any, name: str) -> None:
    ex = csub.add_parser(name, help="chats as Markdown or JSON (the JSON imports back)")
    ex.add_argument("ids", nargs="*", metavar="ID")
    ex.add_argument("--all", action="store_true", help="every chat (not the trash)")
    ex.add_argument("--format", choices=("md", "json"), default="md")
    ex.add_argument("-o", "--output", metavar="PATH", help="write to this file (default: stdout)")
    ex.set_defaults(run=chats_export)


def _import(csub: Any, name: str) -> None:
    im = csub.add_parser(name, help="chats from our JSON export or ChatGPT's conversations.json")
    im.add_argument("file", metavar="FILE")
    im.set_defaults(run=chats_import)


def _migrate(csub: Any, name: str) -> None:
    mg = csub.add_parser(name, help="copy every chat to another backend, check, then switch to it")
    mg.add_argument("--to", required=True, metavar="NAME", help="the backend's name (jsonl, sqlite...)")
    mg.set_defaults(run=chats_migrate)


#: Each action's parser, in the order `chats --help` lists them.
_ACTIONS = {"list": _list, "show": _show, "search": _search, "rename": _rename, "pin": _pin,
            "unpin": _pin, "rm": _rm, "restore": _restore, "export": _export, "import": _import,
            "migrate": _migrate}


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a number of 1 or more, not {text!r}")
    return n


def _date(text: str) -> float:
    import datetime as dt

    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"a date as YYYY-MM-DD, not {text!r}") from None


def _when(ts: float | None) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts is not None else ""
    except (OverflowError, OSError, ValueError, TypeError):  # a backend's odd time
        return "?"


def _app(args: argparse.Namespace) -> Any:
    from rmm_tray.app import App

    return App.open(safe_mode=args.safe_mode)


def _one_line(text: str) -> str:
    from rmm_tray.chat.history import title_from

    return terminal_safe(title_from(text, 10_000), one_line=True)


def resolve(history: Any, ref: str) -> str:
    """A chat id as typed, or 'last' for the newest chat."""
    if ref == "last":
        chats = history.list_chats()
        if not chats:
            from rmm_tray.chat.history import ChatNotFound

            raise ChatNotFound("there is no chat yet")
        return str(chats[0].id)
    return ref


def chats_list(args: argparse.Namespace) -> int:
    history = _app(args).history
    if args.trash:
        chats = history.list_trash()
    elif args.limit and not args.source:
        chats = history.list_recent(args.limit)  # a first page: no need to read every chat
    else:
        chats = history.list_chats()
    if args.source:
        chats = [c for c in chats if c.source == args.source]
    if args.limit:
        chats = chats[: args.limit]
    if args.json:
        print_json([asdict(c) for c in chats])
        return 0
    when = "DELETED" if args.trash else "UPDATED"
    print_table(["ID", when, "MESSAGES", "SOURCE", "TITLE"],
                [[terminal_safe(c.id, one_line=True), _when(c.deleted if args.trash else c.updated),
                  c.messages, c.source or "", ("* " if c.pinned else "") + _one_line(c.title)]
                 for c in chats])
    return 0


def chats_show(args: argparse.Namespace) -> int:
    from rmm_tray.chat.history import versions

    history = _app(args).history
    chat = history.load_chat(resolve(history, args.id))
    shown = chat.tree if args.all_versions else chat.messages
    if args.json:
        print_json({"id": chat.id, "title": chat.title, "created": chat.created,
                    "model": chat.model, "source": chat.source, "system": chat.system,
                    "pinned": chat.pinned, "current": chat.current,
                    "skipped_lines": chat.skipped_lines,
                    "messages": [m.to_dict() | {"interrupted": m.interrupted, "parent": m.parent}
                                 for m in shown]})
        return 0
    title = _one_line(chat.title or chat.id)
    print(f"# {title}  ({terminal_safe(chat.id, one_line=True)}, {_when(chat.created)})")
    for m in shown:
        mark = " [interrupted]" if m.interrupted else ""
        siblings = versions(chat, m.id)
        if len(siblings) > 1:
            mark += f" [version {[s.id for s in siblings].index(m.id) + 1}/{len(siblings)}]"
        if args.all_versions:
            mark += f" [{terminal_safe(m.id, one_line=True)}" + (
                f" after {terminal_safe(m.parent, one_line=True)}]" if m.parent else "]")
        print(f"\n{terminal_safe(m.role, one_line=True)}{mark}:\n{terminal_safe(m.content)}")
    if chat.skipped_lines:
        print(f"\n({chat.skipped_lines} unreadable line(s) skipped; see the log)")
    return 0


def chats_search(args: argparse.Namespace) -> int:
    history = _app(args).history
    hits = history.search(args.query, model=args.model, since=args.since,
                          pinned=True if args.pinned else None, limit=args.limit)
    if args.json:
        print_json([asdict(h) for h in hits])
        return 0
    if not hits:
        print(f"no chat has {args.query!r}", file=sys.stderr)
        return 1
    bold, plain = ("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("", "")
    for h in hits:
        print(f"{terminal_safe(h.chat_id, one_line=True)}  {_when(h.updated)}  {_one_line(h.title)}")
        # The snippet is escaped piece by piece: only our own codes reach the terminal.
        out, at = [], 0
        for start, end in h.highlights:
            out += [terminal_safe(h.snippet[at:start], one_line=True), bold,
                    terminal_safe(h.snippet[start:end], one_line=True), plain]
            at = end
        out.append(terminal_safe(h.snippet[at:], one_line=True))
        print("    " + "".join(out))
    return 0


def chats_rename(args: argparse.Namespace) -> int:
    from rmm_tray.chat.history import title_from

    history = _app(args).history
    if not title_from(args.title):
        raise ChatsUsage("a title needs some text")
    chat_id = resolve(history, args.id)
    history.update_chat(chat_id, title=args.title)
    print(f"renamed {chat_id}: {_one_line(args.title)}")
    return 0


def chats_pin(args: argparse.Namespace) -> int:
    history = _app(args).history
    for ref in args.ids:
        history.update_chat(resolve(history, ref), pinned=args.pinned)
    return 0


def chats_rm(args: argparse.Namespace) -> int:
    history = _app(args).history
    ids = [resolve(history, ref) for ref in args.ids]
    for chat_id in ids:
        history.load_chat(chat_id)  # every id checked before any is removed
    for chat_id in ids:
        (history.purge_chat if args.purge else history.delete_chat)(chat_id)
    if not args.purge:
        print(f"moved {len(ids)} chat(s) to the trash; 'rmm-tray chats restore ID' brings one back",
              file=sys.stderr)
    return 0


def chats_restore(args: argparse.Namespace) -> int:
    history = _app(args).history
    for chat_id in args.ids:
        history.restore_chat(chat_id)
    return 0


def chats_export(args: argparse.Namespace) -> int:
    from rmm_tray.chat.history_io import export_text
    from rmm_tray.home.atomic import atomic_write_text

    history = _app(args).history
    if args.all == bool(args.ids):
        raise ChatsUsage("name the chats to export, or --all")
    ids = [c.id for c in history.list_chats()] if args.all else [resolve(history, r) for r in args.ids]
    text = export_text(history, ids, args.format)
    if args.output:
        atomic_write_text(Path(args.output), text)
        print(f"exported {len(ids)} chat(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def chats_import(args: argparse.Namespace) -> int:
    from rmm_tray.chat.history_io import import_chats, read_import

    history = _app(args).history
    result = import_chats(history, read_import(Path(args.file)))
    print(f"imported {len(result.imported)} chat(s)"
          + (f"; {len(result.skipped)} already there" if result.skipped else ""), file=sys.stderr)
    return 0


def chats_migrate(args: argparse.Namespace) -> int:
    import tomlkit

    from rmm_tray.chat.history import HistoryBackend, HistoryError
    from rmm_tray.chat.history_io import migrate
    from rmm_tray.home.config_edit import edit_config

    app = _app(args)
    source = app.history
    if args.to == source.name:
        raise ChatsUsage(f"the history is in '{args.to}' already")
    found = app.plugins.collect("register_history_backends", lambda o: isinstance(o, HistoryBackend),
                                "HistoryBackend", app=app)
    target = next((b for _, b in found if b.name == args.to), None)
    if target is None:
        names = ", ".join(sorted({b.name for _, b in found}))
        raise HistoryError(f"no history backend '{args.to}' (have: {names})")
    try:
        n = migrate(source, target)
    finally:
        target.close()

    def switch(doc: Any) -> None:
        if "history" not in doc:
            doc["history"] = tomlkit.table()
        doc["history"]["backend"] = args.to

    edit_config(app.home.config_file, switch)
    print(f"copied and checked {n} chat(s); [history] backend is now '{args.to}' "
          f"(the '{source.name}' copy stays where it was)", file=sys.stderr)
    return 0
