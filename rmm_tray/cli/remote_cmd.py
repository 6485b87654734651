"""`rmm-tray remote add|list|rm`: OpenAI-compatible servers as engines.

The servers live in config.toml's ``[[remote]]`` tables, which the first-party
remote_openai plugin reads. A key is never printed: it stays in the environment
variable named, or in the OS keyring, or (where there is none) in config.toml
made readable by its owner only.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rmm_tray.cli.output import print_json, print_table
from rmm_tray.errors import RmmError


class RemoteUsage(RmmError):
    """A remote command that cannot be done as asked."""


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


def _servers(config: Any) -> list[Any]:
    from rmm_tray.plugins.remote_openai import servers_from_config

    return servers_from_config(config.get("remote"))


def run_add(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.plugins import remote_openai as ro

    if not ro.valid_name(args.name):
        raise RemoteUsage(f"a server's name is letters, digits, '-', '_' or '.', got {args.name!r}")
    ro.api_base(args.url)
    app = App.open(safe_mode=args.safe_mode)
    if any(s.name == args.name for s in _servers(app.config)):
        raise RemoteUsage(f"there is a server '{args.name}' already; 'rmm-tray remote rm "
                          f"{args.name}' first")
    key = ""
    if args.api_key_stdin:
        key = sys.stdin.readline().strip()
        if not key:
            raise RemoteUsage("--api-key-stdin read no key")
    env = args.api_key_env or ""
    if env and not os.environ.get(env):
        print(f"rmm-tray: note: ${env} is not set here; the key is read from it at each request",
              file=sys.stderr)
    server = ro.RemoteServer(args.name, args.url, env, key)
    found = ""
    if not args.no_check:
        models = ro.OpenAIRemote(server).models()
        shown = ", ".join(models[:5]) + (f", … ({len(models)} in all)" if len(models) > 5 else "")
        found = f": {len(models)} model{'s' if len(models) != 1 else ''}" + (f" ({shown})" if models else "")
    in_config = bool(key) and not ro.keyring_set(args.name, key)
    _write(app, ro.RemoteServer(args.name, args.url, env, key if in_config else ""))
    where = " (key in config.toml, mode 0600)" if in_config else " (key in the keyring)" if key else ""
    print(f"added {args.name} at {ro.api_base(args.url)}{found}{where}")
    print(f"chat with: rmm-tray chat -m {args.name}:MODEL")
    return 0


def _write(app: Any, server: Any) -> None:
    import tomlkit

    from rmm_tray.home.config_edit import edit_config

    def change(doc: Any) -> None:
        if "remote" not in doc:
            doc["remote"] = tomlkit.aot()
        table = tomlkit.table()
        table["name"] = server.name
        table["base_url"] = server.base_url
        if server.api_key_env:
            table["api_key_env"] = server.api_key_env
        if server.api_key:
            table["api_key"] = server.api_key
        doc["remote"].append(table)

    path = app.home.config_file
    if server.api_key:
        _private(path)
    edit_config(path, change)
    if server.api_key:
        _private(path)


def _private(path: Any) -> None:
    """A key in config.toml: the file becomes readable by its owner only (the
    atomic write keeps the mode of the file it replaces)."""
    try:
        (path.resolve() if path.exists() else path).touch(mode=0o600, exist_ok=True)
        os.chmod(path.resolve(), 0o600)
    except OSError as exc:
        raise RmmError(f"config.toml: cannot make it private: {exc.strerror or exc}") from None


def run_list(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.hooks.engines import engine_models
    from rmm_tray.plugins.remote_openai import OpenAIRemote

    app = App.open(safe_mode=args.safe_mode)
    servers = _servers(app.config)
    listed = engine_models({s.name: OpenAIRemote(s) for s in servers})
    if args.json:
        print_json([{"name": s.name, "base_url": s.base_url, "key": s.key_source(),
                     "models": e.models, "error": e.error} for s, e in zip(servers, listed)])
        return 0
    if not servers:
        print("No servers yet. Add one with: rmm-tray remote add NAME URL [--api-key-env VAR]")
        return 0
    print_table(["NAME", "URL", "KEY", "MODELS"], [
        [s.name, s.base_url, s.key_source(),
         e.error or (", ".join(m.split(":", 1)[1] for m in e.models) or "none")]
        for s, e in zip(servers, listed)])
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.home.config_edit import edit_config
    from rmm_tray.plugins.remote_openai import keyring_delete

    app = App.open(safe_mode=args.safe_mode)
    if not any(s.name == args.name for s in _servers(app.config)):
        raise RemoteUsage(f"no server '{args.name}'; see 'rmm-tray remote list'")

    def change(doc: Any) -> None:
        kept = [t for t in doc["remote"] if t.get("name") != args.name]
        if kept:
            aot = doc["remote"]
            for i in reversed(range(len(aot))):
                if aot[i].get("name") == args.name:
                    del aot[i]
        else:
            del doc["remote"]

    edit_config(app.home.config_file, change)
    keyring_delete(args.name)
    print(f"removed {args.name}")
    return 0
