"""`rmm-tray prompts`: list, show, create, edit, delete, render, version, share."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rmm_tray.cli.output import print_json, print_table
from rmm_tray.errors import RmmError

EXIT_USAGE = 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser("prompts", help="prompt templates: list, build, render, share",
                       description="Prompts live in prompts/NAME.toml; plugins add read-only ones.")
    psub = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    ls = psub.add_parser("list", help="all prompts and where they come from")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=_cli(prompts_list))
    show = psub.add_parser("show", help="one prompt in full")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_cli(prompts_show))
    new = psub.add_parser("new", help="create a prompt in the prompts folder")
    new.add_argument("name")
    new.add_argument("--from", dest="source", metavar="NAME", help="start from this prompt")
    new.add_argument("--description", default="")
    new.set_defaults(run=_cli(prompts_new))
    edit = psub.add_parser("edit", help="edit a prompt in $EDITOR; checked before it is saved")
    edit.add_argument("name")
    edit.set_defaults(run=_cli(prompts_edit))
    rm = psub.add_parser("rm", help="delete a prompt (its versions stay for restore)")
    rm.add_argument("name")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask")
    rm.set_defaults(run=_cli(prompts_rm))
    render = psub.add_parser("render", help="the messages a prompt makes and their token count")
    render.add_argument("name")
    add_value_flags(render)
    render.add_argument("-m", "--model", help="count for this model (default: the default model)")
    render.add_argument("--json", action="store_true")
    render.set_defaults(run=_cli(prompts_render))
    versions = psub.add_parser("versions", help="earlier saves of a prompt")
    versions.add_argument("name")
    versions.add_argument("--json", action="store_true")
    versions.set_defaults(run=_cli(prompts_versions))
    restore = psub.add_parser("restore", help="make an earlier version current")
    restore.add_argument("name")
    restore.add_argument("version", type=int)
    restore.set_defaults(run=_cli(prompts_restore))
    export = psub.add_parser("export", help="write prompts to one file to share")
    export.add_argument("names", nargs="+", metavar="NAME")
    export.add_argument("-o", "--output", required=True, metavar="FILE")
    export.set_defaults(run=_cli(prompts_export))
    imp = psub.add_parser("import", help="read an export, an Open WebUI export or an llm YAML template")
    imp.add_argument("file")
    imp.add_argument("--force", action="store_true", help="replace prompts of the same name")
    imp.set_defaults(run=_cli(prompts_import))

    one = sub.add_parser("prompt", help="use a prompt in the running app",
                         description="What a prompt's own hotkey does, as a command: bind "
                         "'rmm-tray prompt run NAME' as a desktop shortcut where apps cannot "
                         "see keys (Wayland).")
    osub = one.add_subparsers(dest="prompt_command", metavar="ACTION", required=True)
    run = osub.add_parser("run", help="open the popup on the prompt's form, the selection filled "
                          "(sent at once when the prompt says run_immediately)")
    run.add_argument("name")
    run.set_defaults(run=_cli(prompt_run))


def add_value_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="fill a variable (repeatable)")
    p.add_argument("--input", metavar="TEXT", help="the text for {{input}}")
    p.add_argument("--selection", metavar="TEXT", help="the text for {{selection}}")
    p.add_argument("--clipboard", metavar="TEXT", help="the text for {{clipboard}}")


class UsageError(RmmError):
    """A mistake in how the command was called (exit status 2)."""


def usage_exit(message: str) -> int:
    print(f"rmm-tray: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _cli(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A missing variable or a bad --var is a usage error: exit status 2."""
    def run(args: argparse.Namespace) -> int:
        # Imported when the command runs: `--help` builds every parser.
        from rmm_tray.chat.prompt_model import MissingVariables

        try:
            return fn(args)
        except (UsageError, MissingVariables) as exc:
            return usage_exit(str(exc))

    run.__name__ = fn.__name__
    return run


def parse_vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--var needs KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _app(args: argparse.Namespace) -> Any:
    from rmm_tray.app import App

    return App.open(safe_mode=args.safe_mode)


def _store(app: Any) -> Any:
    from rmm_tray.chat.prompt_store import PromptStore

    return PromptStore(app.home.prompts)


def template_dict(t: Any) -> dict[str, Any]:
    from rmm_tray.chat.templates import template_to_dict

    data = template_to_dict(t)
    return {"name": t.name, "description": t.description, "source": t.source,
            "variables": t.variables, "system": t.system, "body": t.body, "tags": list(t.tags),
            "hotkey": t.hotkey, "run_immediately": t.run_immediately,
            "blocks": data["blocks"], "variable_specs": data.get("variables", {})}


def prompts_list(args: argparse.Namespace) -> int:
    templates = sorted(_app(args).templates().values(), key=lambda t: t.name)
    if args.json:
        print_json([template_dict(t) for t in templates])
    else:
        print_table(["NAME", "VARIABLES", "SOURCE", "DESCRIPTION"],
                    [[t.name, ",".join(t.variables), t.source, t.description] for t in templates])
    return 0


def prompts_show(args: argparse.Namespace) -> int:
    from rmm_tray.chat.prompt_model import BLOCK_TITLES

    t = _app(args).template(args.name)
    if args.json:
        print_json(template_dict(t))
        return 0
    print(f"# {t.name} ({t.source})")
    if t.description:
        print(t.description)
    if t.hotkey:
        print(f"hotkey: {t.hotkey}" + (" (runs at once)" if t.run_immediately else ""))
    if not t.blocks:
        if t.system:
            print(f"\n[system]\n{t.system}")
        print(f"\n[body]\n{t.body}")
    for b in t.blocks:
        print(f"\n[{b.title or BLOCK_TITLES.get(b.kind, b.kind)}]\n{b.text}")
        if b.kind == "example":
            print(f"[→ reply]\n{b.reply}")
    for name, spec in t.specs().items():
        extra = f" options={','.join(spec.options)}" if spec.options else ""
        extra += f" default={spec.default!r}" if spec.default else ""
        extra += "" if spec.required else " optional"
        extra += f" ({spec.description})" if spec.description else ""
        print(f"\nvariable {name}: {spec.type}{extra}")
    return 0


def prompts_new(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rmm_tray.chat.prompt_model import PromptBlock
    from rmm_tray.chat.templates import PromptTemplate

    app = _app(args)
    store = _store(app)
    if args.source:
        base = app.template(args.source)
        t = replace(base, name=args.name, blocks=base.all_blocks, body="", system=None,
                    description=args.description or base.description, hotkey="")
    else:
        t = PromptTemplate(name=args.name, description=args.description, blocks=(
            PromptBlock("system", "You are a helpful assistant."),
            PromptBlock("instructions", ""),
            PromptBlock("user", "{{input}}"),
        ))
    path = store.save(t, overwrite=False)
    print(f"created {path.parent.name}/{path.name}; change it with 'rmm-tray prompts edit {t.name}'")
    return 0


def _editor() -> list[str]:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or ("notepad" if os.name == "nt" else "vi")
    return shlex.split(editor)


def prompts_edit(args: argparse.Namespace) -> int:
    from rmm_tray.app import USER_TEMPLATES
    from rmm_tray.chat.templates import dump_prompt

    app = _app(args)
    store = _store(app)
    t = app.template(args.name)
    if t.source != USER_TEMPLATES:
        raise UsageError(f"prompt '{args.name}' comes from the plugin {t.source} and cannot be "
                         f"changed; copy it: rmm-tray prompts new NAME --from {args.name}")
    path = store.path(args.name)
    text = path.read_text(encoding="utf-8") if path.exists() else dump_prompt(t)
    # Edited in a temporary copy: the prompt changes only once the edit checks out,
    # and a failed check leaves the person's text in that copy.
    import subprocess
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f"{args.name}.", suffix=".toml")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    while True:
        subprocess.run([*_editor(), tmp], check=False)
        edited = Path(tmp).read_text(encoding="utf-8")
        if edited == text:
            Path(tmp).unlink()
            print("no change")
            return 0
        try:
            from rmm_tray.chat.templates import load_prompt_text
            from rmm_tray.desktop import prompt_hotkeys

            prompt_hotkeys.check(app, load_prompt_text(args.name, edited))
            store.save_text(args.name, edited)
        except RmmError as exc:
            print(f"rmm-tray: error: {exc}", file=sys.stderr)
            if sys.stdin.isatty() and input("edit again? [Y/n] ").strip().lower() in ("", "y", "yes"):
                continue
            print(f"your edit is kept in {tmp}", file=sys.stderr)
            return 1
        Path(tmp).unlink()
        print(f"saved {path.parent.name}/{path.name}")
        return 0


def prompts_rm(args: argparse.Namespace) -> int:
    store = _store(_app(args))
    if not store.exists(args.name):
        raise UsageError(f"no prompt '{args.name}' in the prompts folder")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"deleting '{args.name}' needs --yes when there is no terminal to ask")
        if input(f"delete prompt '{args.name}'? [y/N] ").strip().lower() not in ("y", "yes"):
            print("kept")
            return 0
    store.delete(args.name)
    print(f"deleted '{args.name}'; 'rmm-tray prompts versions {args.name}' lists what restore can bring back")
    return 0


def render_for(app: Any, args: argparse.Namespace, name: str, *, count: bool) -> Any:
    """The preview ``render`` prints: shared with `prompt run` and tests."""
    from rmm_tray.chat.prompt_use import fill_prompt, preview

    values = parse_vars(args.var)
    template = app.template(name)
    model = _model(app, getattr(args, "model", None))
    rendered = fill_prompt(app, template, values, user_input=args.input, selection=args.selection,
                           clipboard=args.clipboard, model=model)
    counter = None
    if count:
        from rmm_tray.engine.prompt_count import PromptCounter

        counter = PromptCounter()
    try:
        return preview(app, counter, rendered, model)
    finally:
        if counter is not None:
            counter.close()


def _model(app: Any, ref: str | None) -> Path | None:
    if not ref:
        return None
    from rmm_tray.models.store import resolve_model

    return resolve_model(ref, app.home.models)


def prompts_render(args: argparse.Namespace) -> int:
    out = render_for(_app(args), args, args.name, count=True)
    if args.json:
        print_json(out.to_dict())
        return 0
    for m in out.messages:
        print(f"[{m['role']}]\n{m['content']}\n")
    if out.tokens is None:
        print(f"(not counted: {out.count_error})", file=sys.stderr)
    else:
        print(f"{out.tokens} tokens for {out.model} · context {out.n_ctx} · reply budget "
              f"{out.reply_budget} · {out.fit}")
    return 0


def prompts_versions(args: argparse.Namespace) -> int:
    import datetime as dt

    versions = _store(_app(args)).versions(args.name)
    if args.json:
        print_json([{"version": v.number, "saved": v.saved} for v in versions])
        return 0
    if not versions:
        print(f"prompt '{args.name}' has no earlier versions")
        return 0
    print_table(["VERSION", "SAVED"], [[v.number, dt.datetime.fromtimestamp(v.saved)
                                        .strftime("%Y-%m-%d %H:%M:%S")] for v in versions])
    return 0


def prompts_restore(args: argparse.Namespace) -> int:
    _store(_app(args)).restore(args.name, args.version)
    print(f"restored version {args.version} of '{args.name}' (the one it replaced is kept as a version)")
    return 0


def prompts_export(args: argparse.Namespace) -> int:
    from rmm_tray.chat.prompt_import import export_prompts
    from rmm_tray.home.atomic import atomic_write_bytes

    app = _app(args)
    templates = [app.template(n) for n in args.names]
    atomic_write_bytes(Path(args.output), export_prompts(templates).encode("utf-8"))
    print(f"wrote {len(templates)} prompt(s) to {args.output}")
    return 0


def prompts_import(args: argparse.Namespace) -> int:
    from rmm_tray.chat.prompt_import import import_file

    app = _app(args)
    store = _store(app)
    found = import_file(Path(args.file))
    taken = app.templates()  # a plugin's prompt of that name would be hidden by it
    clashes = [t.name for t in found.prompts if t.name in taken]
    if clashes and not args.force:
        raise UsageError(f"prompt(s) {', '.join(clashes)} exist already; nothing imported "
                         "(--force replaces them, keeping the old ones as versions)")
    from rmm_tray.desktop import prompt_hotkeys

    for t in found.prompts:
        prompt_hotkeys.check(app, t)  # before any is written: all or nothing
    for t in found.prompts:
        store.save(t)
    print(f"imported {len(found.prompts)} prompt(s) from the {found.source}: "
          f"{', '.join(t.name for t in found.prompts)}")
    for line in found.dropped:
        print(f"  dropped: {line}")
    return 0


def prompt_run(args: argparse.Namespace) -> int:
    from rmm_tray.desktop import ipc
    from rmm_tray.home.paths import DataHome

    try:
        answer = ipc.request(DataHome.from_env().root, {"cmd": "prompt", "name": args.name})
    except ipc.NotRunning:
        raise RmmError("RunMyModel is not running; start it with 'rmm-tray start'") from None
    if isinstance(answer, dict) and answer.get("error"):
        raise RmmError(str(answer["error"]))
    return 0
