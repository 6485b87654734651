"""`rmm-tray config get|set|edit|path`: config.toml from the terminal, through
the same checks and the same in-place editor as the popup's Settings view."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from rmm_tray.cli.output import print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser("config", help="read and change settings (config.toml)")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    get = csub.add_parser("get", help="a setting's value, or all of them")
    get.add_argument("name", nargs="?", help="section.key, such as generation.temperature")
    get.add_argument("--json", action="store_true")
    get.set_defaults(run=run_get)
    put = csub.add_parser("set", help="change a setting in place (comments are kept)")
    put.add_argument("name", help="section.key, such as ui.hotkey")
    put.add_argument("value", help="the new value: 0.6, true, <ctrl>+<alt>+k, ...")
    put.set_defaults(run=run_set)
    edit = csub.add_parser("edit", help="open config.toml in $VISUAL or $EDITOR; checked before it is kept")
    edit.set_defaults(run=run_edit)
    path = csub.add_parser("path", help="where config.toml is")
    path.set_defaults(run=run_path)


def _config_path() -> Path:
    from rmm_tray.home.paths import DataHome

    return DataHome.from_env().config_file


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def run_get(args: argparse.Namespace) -> int:
    from rmm_tray.home import config_values
    from rmm_tray.home.config import Config

    config = Config.load(_config_path(), create=False)
    if args.name:
        value = config_values.get(config, args.name)
        if args.json:
            print_json(value)
        else:
            print(_shown(value))
        return 0
    values = {name: config_values.get(config, name) for name in config_values.known_names()}
    if args.json:
        print_json(values)
    else:
        for name, value in values.items():
            print(f"{name} = {_shown(value)}")
    return 0


def run_set(args: argparse.Namespace) -> int:
    from rmm_tray.home import config_values

    value = config_values.from_command_line(args.name, args.value)
    config_values.set_values(_config_path(), {args.name: value})
    note = ""
    if config_values.needs_restart([args.name]):
        note = " (applies from the next start of the tray app)"
    print(f"{args.name} = {_shown(value)}{note}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    print(_config_path())
    return 0


def editor_command() -> list[str]:
    """$VISUAL, then $EDITOR, then the first of the usual terminal editors found."""
    for var in ("VISUAL", "EDITOR"):
        if os.environ.get(var, "").strip():
            return shlex.split(os.environ[var])
    for name in ("sensible-editor", "editor", "nano", "vi"):
        if shutil.which(name):
            return [name]
    from rmm_tray.errors import RmmError

    raise RmmError("no editor found: set $EDITOR, or open the file 'rmm-tray config path' names")


def run_edit(args: argparse.Namespace) -> int:
    """Edit a copy; only a copy that loads replaces config.toml, so a typo never
    breaks the app. A rejected copy is kept (nothing typed is lost) and, at a
    terminal, offered for another edit."""
    from rmm_tray.home.atomic import atomic_write_text, locked
    from rmm_tray.home.config import DEFAULT_CONFIG_TEXT, Config, ConfigError

    path = _config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(path.name + ".edit")
    if not draft.exists():
        draft.write_text(path.read_text(encoding="utf-8") if path.exists() else DEFAULT_CONFIG_TEXT,
                         encoding="utf-8")
    editor = editor_command()
    while True:
        import subprocess

        code = subprocess.call([*editor, str(draft)])
        if code != 0:
            print(f"rmm-tray: the editor exited with code {code}; config.toml is unchanged, "
                  f"your edit is kept in {draft}", file=sys.stderr)
            return 1
        text = draft.read_text(encoding="utf-8")
        try:
            Config.load(draft, create=False)
        except ConfigError as exc:
            message = str(exc).replace(draft.name, path.name)
            print(f"rmm-tray: error: {message}", file=sys.stderr)
            if sys.stdin.isatty() and input("Edit again? [Y/n] ").strip().lower() in ("", "y", "yes"):
                continue
            print(f"config.toml is unchanged; your edit is kept in {draft}", file=sys.stderr)
            return 1
        with locked(path):
            atomic_write_text(path, text)
        draft.unlink()
        print(f"saved {path}")
        return 0
