"""`rmm-tray models info|default|set`: local model details and per-model settings.

Imported on every start (the parser lists these actions): the work is imported
only when an action runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from rmm_tray.cli.output import print_json


def add_actions(msub: Any) -> None:
    info = msub.add_parser("info", help="details of a local model, its settings and whether it fits "
                           "(or of OWNER/REPO on the Hub)")
    info.add_argument("name", help="a file name in models/, a unique part of one, a path, or OWNER/REPO")
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=run_info)

    default = msub.add_parser("default", help="the model loaded on first use: show it, or set it "
                              "to NAME")
    default.add_argument("name", nargs="?")
    default.add_argument("--json", action="store_true")
    default.set_defaults(run=run_default)

    st = msub.add_parser(
        "set", help="a model's own settings, over [model] and [generation]",
        description="Set a model's own settings in config.toml, e.g. "
        "'rmm-tray models set llama context_length=8192 temperature=0.6'. Keys: "
        "context_length, gpu_layers, chat_template, max_tokens, temperature, top_p, "
        "top_k, min_p, repeat_penalty. Without KEY=VALUE: show them.")
    st.add_argument("name")
    st.add_argument("assignments", nargs="*", metavar="KEY=VALUE")
    st.add_argument("--unset", action="append", default=[], metavar="KEY",
                    help="drop one setting (repeatable)")
    st.add_argument("--reset", action="store_true", help="drop all of this model's settings first")
    st.add_argument("--json", action="store_true")
    st.set_defaults(run=run_set)


def run_info(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.models.manage import model_info
    from rmm_tray.models.store import ModelNotFound

    app = App.open(safe_mode=args.safe_mode)
    try:
        data = model_info(app, args.name)
    except ModelNotFound:
        from rmm_tray.cli.hub_cmds import is_repo_id

        # Only a name the Hub could have: the Hub client's own complaint about
        # anything else ("hf:owner/repo") is a paragraph, and the local miss says it.
        if not is_repo_id(args.name) or not app.remote_sources():
            raise
        # Not a local model but shaped like owner/repo: what the Hub has under that name.
        from rmm_tray.cli.hub_cmds import run_files

        args.repo = args.name
        return run_files(args)
    if args.json:
        print_json(data)
        return 0
    print(_info_text(data))
    return 0


def _info_text(d: dict[str, Any]) -> str:
    from rmm_tray.units import human_size

    fit = d["fit"]
    params = d["parameters"] + (" (estimated from size)" if d["parameters_estimated"] else "")
    parts = f" in {d['parts']} parts" if d["parts"] > 1 else ""
    own = ", ".join(f"{k} = {v!r}" for k, v in d["settings"].items()) or "none (the defaults)"
    eff = d["effective"]
    rows = [
        ("name", d["name"] + ("  (default)" if d["default"] else "")),
        ("path", d["path"]),
        ("size", human_size(d["size"]) + parts),
        ("architecture", d["architecture"]),
        ("parameters", params),
        ("quantization", d["quantization"]),
        ("trained context", d["context_length"]),
        ("layers", d["layers"]),
        ("from", d["origin"]["label"]),
        ("own settings", own),
        ("context", f"{eff['context_length']} tokens, GPU layers {eff['gpu_layers']}, "
                    f"template {eff['chat_template'] or 'from the GGUF'}"),
        ("sampling", f"temperature {eff['temperature']}, top_p {eff['top_p']}, top_k {eff['top_k']}, "
                     f"min_p {eff['min_p']}, repeat_penalty {eff['repeat_penalty']}, "
                     f"max_tokens {eff['max_tokens']}"),
        ("fit", f"{fit['verdict']}: needs {human_size(fit['needed'])} of "
                f"{human_size(fit['available'])} free at {fit['context_length']} tokens "
                f"(weights {human_size(fit['weights'])}, KV cache {human_size(fit['kv_cache'])}, "
                f"overhead {human_size(fit['overhead'])})"
                + (", estimated" if fit["estimated"] else "")),
    ]
    if d["error"]:
        rows.append(("problem", d["error"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {'' if v is None else v}" for k, v in rows)


def run_default(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.models.manage import set_default

    app = App.open(safe_mode=args.safe_mode)
    if args.name is None:
        return _show_default(app, args)
    name = set_default(app, args.name)
    if args.json:
        print_json({"default": name})
    else:
        print(f"default model: {name}")
    return 0


def _show_default(app: Any, args: argparse.Namespace) -> int:
    from rmm_tray.models.store import ModelNotFound

    configured = str(app.config["model"]["default"])
    try:
        name: str | None = app.model_name(app.default_model())
    except ModelNotFound:
        if configured or not args.json:
            raise  # a default that names no model (any more), or no models at all
        name = None
    if args.json:
        print_json({"default": name, "configured": configured})
    elif configured:
        print(f"default model: {name}")
    else:
        print(f"default model: {name} (none set: the first in models/; "
              "'rmm-tray models default NAME' sets one)")
    return 0


def run_set(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.home.config_edit import parse_assignments
    from rmm_tray.models.manage import model_settings, set_settings
    from rmm_tray.models.store import resolve_model

    app = App.open(safe_mode=args.safe_mode)
    name = app.model_name(resolve_model(args.name, app.home.models))
    if args.assignments or args.unset or args.reset:
        values = parse_assignments(args.assignments, name)
        settings = set_settings(app, args.name, values, unset=tuple(args.unset), reset=args.reset)
    else:
        settings = model_settings(app, args.name)
    if args.json:
        print_json({"name": name, "settings": settings})
    elif settings:
        print(f'[models."{name}"]')
        for key, value in settings.items():
            print(f"{key} = {_toml(value)}")
    else:
        print(f"{name} has no settings of its own: it follows [model] and [generation]")
    return 0


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
