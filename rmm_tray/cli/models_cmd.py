"""`rmm-tray models list|import|rm`."""

from __future__ import annotations

import argparse
from typing import Any

from rmm_tray.app import App
from rmm_tray.cli.output import print_json, print_table
from rmm_tray.units import human_size


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list, import and remove local models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="models in the models/ folder")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=run_list)
    imp = msub.add_parser("import", help="add a GGUF file (or a folder of them) to models/")
    imp.add_argument("path")
    imp.add_argument("--copy", action="store_true", help="copy instead of linking")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(run=run_import)
    rm = msub.add_parser("rm", help="remove a model from models/ (a linked file keeps its original)")
    rm.add_argument("name")
    rm.set_defaults(run=run_rm)
    # Other modules add their own actions: the hub (search, pull) and management (info, settings).
    from rmm_tray.cli import hub_cmds, manage_cmds

    hub_cmds.add_actions(msub)
    manage_cmds.add_actions(msub)


def run_list(args: argparse.Namespace) -> int:
    from rmm_tray.model_store import ModelNotFound, list_models

    app = App.open(safe_mode=args.safe_mode)
    models = list_models(app.home.models)
    try:
        default = app.default_model()
    except ModelNotFound:
        default = None
    if args.json:
        print_json([{**m.to_dict(), "default": m.path == default} for m in models])
        return 0
    if not models:
        print("No models yet. Add one with: rmm-tray models import PATH")
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
    print_table(["  NAME", "SIZE", "ARCH", "QUANT", "PARAMS", "CONTEXT", "NOTE"], rows)
    return 0


def run_import(args: argparse.Namespace) -> int:
    app = App.open(safe_mode=args.safe_mode)
    for source in app.sources():
        if source.handles(args.path):
            paths = source.fetch(args.path, app.home.models, copy=args.copy)
            break
    else:
        raise FileNotFoundError(2, "No such file or folder", args.path)
    if args.json:
        print_json([str(p) for p in paths])
    else:
        for p in paths:
            how = "linked" if p.is_symlink() else "copied"
            print(f"{how} {p.relative_to(app.home.models).as_posix()}")
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from rmm_tray.model_store import remove_model

    app = App.open(safe_mode=args.safe_mode)
    path = remove_model(args.name, app.home.models)
    print(f"removed {path.relative_to(app.home.models).as_posix()}")
    return 0
