"""`rmm-tray chat`: stream a reply to stdout and keep the turn in history."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rmm_tray.cli.output import json_line
from rmm_tray.errors import RmmError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="chat with a local model",
                       description="Send PROMPT (or stdin with '-') and stream the reply. "
                       "Without PROMPT on a terminal: an interactive chat.")
    p.add_argument("prompt", nargs="?", metavar="PROMPT | -")
    p.add_argument("-m", "--model", help="a path, a file name in models/, or a unique part of one")
    p.add_argument("-c", "--chat", metavar="CHAT_ID", help="continue this chat ('last': the latest)")
    p.add_argument("--system", metavar="TEXT", help="system prompt for a new chat")
    p.add_argument("-t", "--template", metavar="NAME", help="use a prompt template")
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="fill a template variable (repeatable)")
    p.add_argument("--max-tokens", type=_setting("max_tokens"), metavar="N")
    p.add_argument("--temperature", type=_setting("temperature"), metavar="T")
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="JSON lines: tokens, then done or error")
    p.add_argument("--stats", action="store_true", help="print speed figures to stderr")
    p.add_argument("--no-save", action="store_true",
                   help="keep nothing in the history (a chat continued with -c stays as it was)")
    p.set_defaults(run=run, interactive=False)
    _json_usage_errors(p)


def _setting(key: str) -> Any:
    """An argparse type for a [generation] setting: the rule config.toml and
    `models set` apply, so a flag cannot pass what they refuse."""

    def parse(text: str) -> Any:
        from rmm_tray.models.settings import checked_setting

        try:
            return checked_setting(key, text)
        except RmmError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = key
    return parse


def _json_usage_errors(parser: argparse.ArgumentParser) -> None:
    """With --json, a usage error (a bad flag value) is also the JSON error line a
    script reading stdout waits for; argparse alone only writes to stderr."""
    parse_known_args, error = parser.parse_known_args, parser.error
    wants_json = False

    def parse(args: Any = None, namespace: Any = None) -> Any:
        nonlocal wants_json
        wants_json = "--json" in list(args or ())
        return parse_known_args(args, namespace)

    def on_error(message: str) -> Any:
        if wants_json:
            json_line({"type": "error", "message": message})
        return error(message)

    parser.parse_known_args = parse  # type: ignore[method-assign]
    parser.error = on_error  # type: ignore[method-assign]


class _Usage(RmmError):
    """A mistake in the command line found after parsing (an empty prompt)."""


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _Usage(f"--var needs KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from rmm_tray.chat.prompt_model import MissingVariables

    try:
        return _run_edge(args)
    except (_Usage, MissingVariables) as exc:
        # A usage error, as argparse's own: the variable or flag is named, exit 2.
        if args.json:
            json_line({"type": "error", "message": str(exc)})
        print(f"rmm-tray: error: {exc}", file=sys.stderr)
        return 2


def _run_edge(args: argparse.Namespace) -> int:
    if not args.json:
        return _run(args)
    # Every failure of a --json chat ends with the error line a script waits
    # for, on stdout, besides the usual line on stderr.
    from rmm_tray.chat.prompt_model import MissingVariables
    from rmm_tray.cli.errors import report

    try:
        return _run(args)
    except KeyboardInterrupt:
        json_line({"type": "error", "message": "stopped"})
        raise
    except SystemExit:
        raise  # argparse's own exits have printed their JSON line already
    except (_Usage, MissingVariables):
        raise  # a usage error: run() reports it, with its JSON line
    except Exception as exc:
        line = report(exc, [v for v in vars(args).values() if isinstance(v, str)])
        json_line({"type": "error", "message": line})
        if args.debug:
            raise
        print(f"rmm-tray: error: {line}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from rmm_tray.app import App

    variables = _parse_vars(args.var)
    app = App.open(safe_mode=args.safe_mode)
    try:
        app.start()
        model = _model(app, args.model)
        params = _params(app, args, model)
        chat_id = _chat_id(app, args.chat)
        if args.prompt is None and (args.interactive or sys.stdin.isatty()) and not args.json:
            return _repl(app, args, params, model, chat_id, variables)
        prompt = sys.stdin.read() if args.prompt in ("-", None) else args.prompt
        text, system = _compose(app, args, prompt, variables)
        if not text.strip():
            raise _Usage("empty prompt")
        examples = getattr(args, "examples", None)
        if examples is not None and getattr(args, "no_save", False):
            print("rmm-tray: note: --no-save leaves out the prompt's examples", file=sys.stderr)
        elif examples is not None and chat_id is None:
            from dataclasses import replace

            from rmm_tray.chat.prompt_use import start_chat

            chat_id = start_chat(app, app.template(args.template), replace(examples, system=system),
                                 model=app.model_name(model), source="cli")
            system = None
        return _one_turn(app, args, text, system, params, model, chat_id)
    finally:
        app.close()


def _params(app: Any, args: argparse.Namespace, model: Any) -> Any:
    """The model's sampling defaults; flags given on the command line win."""
    return app.gen_params(model, max_tokens=args.max_tokens, temperature=args.temperature,
                          seed=args.seed)


def _model(app: Any, ref: str | None) -> Any:
    return app.resolve_model(ref) if ref else app.default_model()


def _chat_id(app: Any, ref: str | None) -> str | None:
    from rmm_tray.chat.history import ChatNotFound

    if ref == "last":
        chats = app.history.list_chats()
        if not chats:
            raise ChatNotFound("there is no chat to continue yet")
        return chats[0].id
    if ref is not None:
        app.history.load_chat(ref)  # fail now, before the model loads
    return ref


def _compose(app: Any, args: argparse.Namespace, prompt: str, variables: dict[str, str]):
    if not args.template:
        return prompt, args.system
    from rmm_tray.chat.prompt_use import fill_prompt

    template = app.template(args.template)
    rendered = fill_prompt(app, template, variables,
                           user_input=prompt if prompt and prompt.strip() else None)
    if rendered.examples:
        # Few-shot pairs go before the message, as turns of the chat it starts.
        args.examples = rendered
    return rendered.user, args.system or rendered.system


def _one_turn(app, args, text, system, params, model, chat_id) -> int:  # type: ignore[no-untyped-def]
    from rmm_tray.chat.turn import Turn
    from rmm_tray.engine import Done, Failed, Token

    turn = Turn(app, text, params, chat_id=chat_id, system=system, model=model, source="cli",
                history=_history(app, args, chat_id))
    out = sys.stdout
    done: Done | None = None
    try:
        for event in turn:
            if isinstance(event, Token):
                if args.json:
                    json_line({"type": "token", "text": event.text})
                else:
                    out.write(event.text)
                    out.flush()
            elif isinstance(event, Done):
                done = event
            elif isinstance(event, Failed):
                if args.json:
                    json_line({"type": "error", "message": event.message})
                print(f"rmm-tray: error: {event.message}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        if args.json:
            json_line({"type": "error", "message": "stopped; the partial reply is saved",
                       "chat_id": turn.chat_id})
        else:
            out.write("\n")
        print("rmm-tray: stopped; the partial reply is saved", file=sys.stderr)
        return 130
    if args.json and done is not None:
        json_line({"type": "done", "chat_id": turn.chat_id, **_stats(done)})
    elif not args.json:
        out.write("\n")
        out.flush()
    if args.stats and done is not None:
        print(_stats_line(turn.chat_id, done), file=sys.stderr)
    return 0


def _history(app: Any, args: argparse.Namespace, chat_id: str | None) -> Any:
    """Where the turn is kept: the history, or with --no-save a scratch copy
    (of the chat continued, if any) that ends with the command."""
    if not getattr(args, "no_save", False):
        return app.history
    from rmm_tray.chat.history_memory import MemoryHistory

    scratch = MemoryHistory()
    if chat_id is not None:
        scratch.import_chat(app.history.export_chat(chat_id))
    return scratch


def _stats(done: Any) -> dict[str, Any]:
    return {
        "model": done.model,
        "prompt_tokens": done.prompt_tokens,
        "cached_tokens": done.cached_tokens,
        "completion_tokens": done.completion_tokens,
        "ttft_s": done.ttft_s,
        "prompt_tok_s": done.prompt_tok_s,
        "decode_tok_s": done.decode_tok_s,
        "stop_reason": done.stop_reason,
    }


def _stats_line(chat_id: str, done: Any) -> str:
    return (f"[chat {chat_id} · {done.model} · {done.prompt_tokens} prompt tokens "
            f"({done.cached_tokens} cached) · {done.completion_tokens} tokens · "
            f"first token {done.ttft_s:.2f} s · {done.decode_tok_s:.1f} tok/s · "
            f"{done.stop_reason}]")


def _repl(app, args, params, model, chat_id, variables) -> int:  # type: ignore[no-untyped-def]
    from rmm_tray.chat.turn import Turn
    from rmm_tray.engine import Failed, Token

    print(f"RunMyModel · {app.model_name(model)} · Ctrl+C stops a reply, Ctrl+D quits", file=sys.stderr)
    system = args.system
    history = None  # one for the whole session: a --no-save chat goes on in its scratch copy
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        if not line.strip():
            continue
        text, sys_text = _compose(app, args, line, variables)
        if history is None:
            history = _history(app, args, chat_id)
        turn = Turn(app, text, params, chat_id=chat_id, system=sys_text or system, model=model,
                    source="cli", history=history)
        chat_id = turn.chat_id
        try:
            for event in turn:
                if isinstance(event, Token):
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif isinstance(event, Failed):
                    print(f"\nrmm-tray: error: {event.message}", file=sys.stderr)
        except KeyboardInterrupt:
            print("\n[stopped]", file=sys.stderr)
            continue
        sys.stdout.write("\n")

