"""The `rmm-tray` command. Headless: it never imports pystray, webview or pynput,
and imports llama_cpp only for commands that generate."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from rmm_tray import __version__

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    from rmm_tray.cli import (
        chat_cmd,
        chats_cmd,
        config_cmd,
        desktop_cmds,
        doctor_cmd,
        info_cmds,
        launcher_cmd,
        logs_cmd,
        models_cmd,
        prompts_cmd,
        serve_cmd,
    )

    parser = argparse.ArgumentParser(
        prog="rmm-tray",
        description="RunMyModel tray: a local llama.cpp assistant. Without a command: the "
        "tray app on a desktop, an interactive chat in a terminal without one.",
    )
    parser.add_argument("--version", action="version", version=f"rmm-tray {__version__}")
    parser.add_argument("--debug", action="store_true", help="log verbosely; show tracebacks")
    parser.add_argument("--safe-mode", action="store_true",
                        help="load first-party plugins only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chat_cmd.add_parser(sub)
    models_cmd.add_parser(sub)
    info_cmds.add_parsers(sub)
    chats_cmd.add_parser(sub)
    prompts_cmd.add_parser(sub)
    doctor_cmd.add_parser(sub)
    desktop_cmds.add_parsers(sub)
    config_cmd.add_parser(sub)
    logs_cmd.add_parser(sub)
    launcher_cmd.add_parser(sub)
    serve_cmd.add_parser(sub)
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
    parser = build_parser()
    args = parser.parse_args(argv)
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

        if has_desktop():
            args = parser.parse_args([*(argv or sys.argv[1:]), "start"])
        else:
            args = parser.parse_args([*(argv or sys.argv[1:]), "chat"])
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
