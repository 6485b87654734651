"""`rmm-tray models list|import|rm`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rmm_tray.cli.output import print_json, print_table
from rmm_tray.units import human_size

if TYPE_CHECKING:
    from rmm_tray.app import App


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list, import and remove local models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="models in the models/ folder")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--all", action="store_true",
                    help="also the models of plugins' engines (remote servers), as ENGINE:MODEL")
    ls.set_defaults(run=run_list)
    disc = msub.add_parser("discover", help="GGUF files other apps downloaded (Hugging Face cache, "
                           "LM Studio, Ollama) that can be imported")
    disc.add_argument("--json", action="store_true")
    disc.set_defaults(run=run_discover)
    imp = msub.add_parser("import", help="add a GGUF file, a folder of them, or a model that "
                          "'models discover' lists, to models/")
    imp.add_argument("path", metavar="PATH|NAME")
    imp.add_argument("--copy", action="store_true", help="copy instead of linking")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(run=run_import)
    rm = msub.add_parser("rm", help="remove a model from models/ (a linked file keeps its original)")
    rm.add_argument("name")
    rm.add_argument("--json", action="store_true")
    rm.set_defaults(run=run_rm)
    # Other modules add their own actions: the hub (search, pull) and management (info, settings).
    from rmm_tray.cli import hub_cmds, manage_cmds

    hub_cmds.add_actions(msub)
    manage_cmds.add_actions(msub)


def run_list(args: argparse.Namespace) -> int:
    from rmm_tray.models.store import ModelNotFound, list_models

    app = _app_class().open(safe_mode=args.safe_mode)
    models = list_models(app.home.models)
    try:
        default = app.default_model()
    except ModelNotFound:
        default = None
    remote = _engine_models(app) if getattr(args, "all", False) else []
    if args.json:
        print_json([{**m.to_dict(), "default": m.path == default} for m in models]
                   + [{"name": name, "engine": e.engine} for e in remote for name in e.models]
                   + [{"engine": e.engine, "error": e.error} for e in remote if e.error])
        return 0
    if not models and not remote:
        print("No models yet. Add one with: rmm-tray models import PATH "
              "(or see what other apps downloaded: rmm-tray models discover)")
        return 0
    rows = []
    for m in models:
        i = m.info
        rows.append([
            ("* " if m.path == default else "  ") + m.name,
            human_size(m.size),
            i.architecture if i else "",
            i.quantization if i else "",
            i.size_label if i else "",
            i.context_length if i else "",
            m.error or ("linked" if m.linked else ""),
        ])
    for e in remote:
        rows.extend(["  " + name, "", "", "", "", "", f"on {e.label}"] for name in e.models)
        if e.error:
            rows.append(["  " + e.engine + ":", "", "", "", "", "", e.error])
    print_table(["  NAME", "SIZE", "ARCH", "QUANT", "PARAMS", "CONTEXT", "NOTE"], rows)
    return 0


def _engine_models(app: "App") -> list[Any]:
    from rmm_tray.hooks.engines import engine_models

    return engine_models(app.engines)


def run_discover(args: argparse.Namespace) -> int:
    from rmm_tray.models.acquire import discover

    rows = discover(_app_class().open(safe_mode=args.safe_mode))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No GGUF files found in other apps' folders (Hugging Face cache, LM Studio, Ollama).")
        return 0
    print_table(["NAME", "SIZE", "FROM", "IMPORTED", "PATH"], [
        [r["name"], human_size(r["size"]), r["source"], "yes" if r["imported"] else "no", r["path"]]
        for r in rows])
    print("\nImport one with: rmm-tray models import NAME  (links the file, no copy; --copy copies it)")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from rmm_tray.models.acquire import import_model

    app = _app_class().open(safe_mode=args.safe_mode)
    paths = import_model(app, args.path, copy=args.copy)
    if args.json:
        print_json([str(p) for p in paths])
    else:
        for p in paths:
            how = "linked" if p.is_symlink() else "copied"
            print(f"{how} {p.relative_to(app.home.models).as_posix()}")
    return 0


def run_rm(args: argparse.Namespace) -> int:
    app = _app_class().open(safe_mode=args.safe_mode)
    from rmm_tray.models.manage import delete_model

    path = delete_model(app, args.name)
    name = path.relative_to(app.home.models).as_posix()
    if args.json:
        print_json({"removed": name, "path": str(path)})
    else:
        print(f"removed {name}")
    return 0


def _app_class() -> "type[App]":
    # The App (config, plugins, history) only when a command runs: `--help`
    # builds every command's parser and must not pay for it.
    from rmm_tray.app import App

    return App
