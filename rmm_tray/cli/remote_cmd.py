"""`rmm-tray remote add|list|rm`: OpenAI-compatible servers as engines.

The servers live in config.toml's ``[[remote]]`` tables, which the first-party
remote_openai plugin reads; adding, listing and removing them is
models/remotes.py, shared with the popup's Models view. A key is never printed: it stays in the environment
variable named, or in the OS keyring, or (where there is none) in config.toml
made readable by its owner only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rmm_tray.cli.output import print_json, print_table
from rmm_tray.models.remotes import RemoteUsage


def add_parser(sub: Any) -> None:
    p = sub.add_parser("remote", help="add, list and remove OpenAI-compatible servers",
                       description="Servers whose models you can chat with as NAME:MODEL "
                       "(llama-server, vLLM, Ollama, LM Studio, another rmm-tray serve).")
    rsub = p.add_subparsers(dest="remote_command", metavar="ACTION", required=True)
    add = rsub.add_parser("add", help="add a server; its connection is tested first")
    add.add_argument("name", help="a short name: letters, digits, '-', '_', '.'")
    add.add_argument("url", help="its base URL, e.g. http://gpu-box:8080 (/v1 is added)")
    key = add.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", metavar="VAR", help="read the API key from this variable")
    key.add_argument("--api-key-stdin", action="store_true",
                     help="read the API key from stdin; kept in the OS keyring, else in "
                     "config.toml (mode 0600)")
    add.add_argument("--no-check", action="store_true", help="add it even if it does not answer now")
    add.set_defaults(run=run_add)
    ls = rsub.add_parser("list", help="the servers and the models each serves now")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=run_list)
    rm = rsub.add_parser("rm", help="remove a server (and its stored key)")
    rm.add_argument("name")
    rm.set_defaults(run=run_rm)


def run_add(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.models import remotes

    key = ""
    if args.api_key_stdin:
        key = sys.stdin.readline().strip()
        if not key:
            raise RemoteUsage("--api-key-stdin read no key")
    app = App.open(safe_mode=args.safe_mode)
    note = remotes.key_env_note(args.api_key_env or "")
    if note:
        print(f"rmm-tray: note: {note}", file=sys.stderr)
    added = remotes.add_server(app, args.name, args.url, api_key=key,
                               api_key_env=args.api_key_env or "", check=not args.no_check)
    found = ""
    if added.models is not None:
        models = added.models
        shown = ", ".join(models[:5]) + (f", … ({len(models)} in all)" if len(models) > 5 else "")
        found = f": {len(models)} model{'s' if len(models) != 1 else ''}" + (f" ({shown})" if models else "")
    where = {"config": " (key in config.toml, mode 0600)", "keyring": " (key in the keyring)"}
    print(f"added {added.name} at {added.base}{found}{where.get(added.key_in, '')}")
    print(f"chat with: rmm-tray chat -m {added.name}:MODEL")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.models.remotes import list_servers

    app = App.open(safe_mode=args.safe_mode)
    servers = list_servers(app)
    if args.json:
        print_json([s.to_dict() for s in servers])
        return 0
    if not servers:
        print("No servers yet. Add one with: rmm-tray remote add NAME URL [--api-key-env VAR]")
        return 0
    print_table(["NAME", "URL", "KEY", "MODELS"], [
        [s.name, s.base_url, s.key, s.error or (", ".join(m.split(":", 1)[1] for m in s.models) or "none")]
        for s in servers])
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.models.remotes import remove_server

    remove_server(App.open(safe_mode=args.safe_mode), args.name)
    print(f"removed {args.name}")
    return 0
