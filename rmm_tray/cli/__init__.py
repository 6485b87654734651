"""The `rmm-tray` command. Headless: it never imports pystray, webview or pynput,
and imports llama_cpp only for commands that generate."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from rmm_tray import __version__

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


#: Each command's module, by the command's name, in the order `--help` lists them.
#: A command line names one command, so only that module is imported to parse it:
#: `rmm-tray chats search` never pays for the modules of `serve` or `doctor`.
COMMANDS: dict[str, str] = {
    "chat": "chat_cmd",
    "models": "models_cmd",
    "plugins": "info_cmds",
    "chats": "chats_cmd",
    "prompts": "prompts_cmd", "prompt": "prompts_cmd",
    "doctor": "doctor_cmd",
    "start": "desktop_cmds", "toggle": "desktop_cmds", "show": "desktop_cmds",
    "hide": "desktop_cmds", "quit": "desktop_cmds",
    "config": "config_cmd",
    "logs": "logs_cmd",
    "desktop": "launcher_cmd",
    "serve": "serve_cmd",
    "remote": "remote_cmd",
}


def _wanted_modules(argv: Sequence[str] | None) -> list[str]:
    """The command modules a command line needs: the one its command lives in;
    every one for --help or an unknown command (argparse lists the choices);
    none for a bare `--version`."""
    every = list(dict.fromkeys(COMMANDS.values()))
    if argv is None:
        return every
    for a in argv:
        if a == "-h" or len(a) > 2 and "--help".startswith(a):
            return every  # the top level's help (a command's own comes after its name)
        if not a.startswith("-"):
            return [COMMANDS[a]] if a in COMMANDS else every
    return []


_columns: int | None = None


class _Formatter(argparse.HelpFormatter):
    """argparse's own, with the terminal's width asked once per process: argparse
    makes a formatter for every argument it adds, and asks through shutil, whose
    import (bz2, lzma) costs a quick command more than parsing does."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        global _columns
        if width is None:
            if _columns is None:
                try:
                    _columns = int(os.environ.get("COLUMNS")
                                   or os.get_terminal_size(sys.__stdout__.fileno())[0])
                except (AttributeError, OSError, ValueError):
                    _columns = 80
            width = max(_columns - 2, 11)  # as argparse does with shutil's answer
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """Every parser of the command line, sub-commands' too (argparse makes those
    of the parent's class), formats with `_Formatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def wanted_actions(command: str, actions: Sequence[str]) -> list[str]:
    """The actions of ``command`` whose parsers the command line being parsed needs:
    the one it names; every one for help, an unknown action or none (argparse
    lists the choices then). Outside `main`, every one."""
    plain = [i for i, a in enumerate(_words or []) if not a.startswith("-")]
    if not plain or _words is None or _words[plain[0]] != command:
        return list(actions)
    for a in _words[plain[0] + 1:]:
        if a == "-h" or len(a) > 2 and "--help".startswith(a):
            return list(actions)
        if not a.startswith("-"):
            return [a] if a in actions else list(actions)
    return list(actions)


_words: list[str] | None = None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given ``argv``, only the part that parsing it needs."""
    from importlib import import_module

    global _words
    _words = None if argv is None else list(argv)
    parser = _Parser(
        prog="rmm-tray",
        description="RunMyModel tray: a local llama.cpp assistant. Without a command: the "
        "tray app on a desktop, an interactive chat in a terminal without one.",
    )
    parser.add_argument("--version", action="version", version=f"rmm-tray {__version__}")
    parser.add_argument("--debug", action="store_true", help="log verbosely; show tracebacks")
    parser.add_argument("--safe-mode", action="store_true",
                        help="load first-party plugins only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _wanted_modules(argv):
        module = import_module(f"rmm_tray.cli.{name}")
        (getattr(module, "add_parser", None) or module.add_parsers)(sub)
    return parser


#: Libraries whose notices (retries, redirects, a card without metadata) are not
#: for a person: the one-line error says what failed. --debug shows them.
LIBRARY_LOGGERS = ("huggingface_hub", "httpx", "httpx2", "httpcore", "urllib3", "filelock")


def quiet_libraries() -> None:
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # huggingface_hub sets its logger's level (and adds a handler) when first
    # imported, from this variable; a value the person set wins.
    os.environ.setdefault("HF_HUB_VERBOSITY", "critical")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        quiet_libraries()
    else:
        os.environ["RMM_DEBUG"] = "1"  # the popup process the core starts logs verbosely too
    from rmm_tray.home import logs
    from rmm_tray.home.paths import DataHome

    logs.setup(DataHome.from_env().root, "cli", debug=args.debug)
    if args.command is None:
        from rmm_tray.cli.desktop_cmds import has_desktop

        words.append("start" if has_desktop() else "chat")
        args = build_parser(words).parse_args(words)
        if words[-1] == "chat":
            args.interactive = True
    try:
        return int(args.run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            raise
        from rmm_tray.cli.errors import report

        print(f"rmm-tray: error: {report(exc, argv)}", file=sys.stderr)
        return EXIT_ERROR
