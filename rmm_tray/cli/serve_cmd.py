"""`rmm-tray serve`: the local OpenAI- and Anthropic-compatible API, headless
(for servers, scripts and tests). The server's libraries load only here."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the local OpenAI/Anthropic-compatible API (no GUI)",
                       description="Serve /v1/chat/completions, /v1/completions, /v1/messages, "
                       "/v1/models and /v1/embeddings on the models in models/. Address and key "
                       "from [server] in config.toml; the flags win.")
    p.add_argument("--host", help="address to listen on (default: [server] host, 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port (default: [server] port, 8765)")
    p.add_argument("-m", "--model", help="model to load at start (default: the default model)")
    p.set_defaults(run=run)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from rmm_tray.app import App
    from rmm_tray.server.run import bind, serve
    from rmm_tray.server.settings import ServerSettings, check_bind

    app = App.open(safe_mode=args.safe_mode)
    try:
        settings = ServerSettings.from_config(app.config["server"], host=args.host, port=args.port)
        check_bind(settings)
        bind(settings).close()  # a port in use says so before the model loads
        model = _model(app, args.model)
        app.start()
        if model is not None:
            # In the background: the first request waits for it, not the start-up.
            app.engine.load(model).add_done_callback(_loaded)
        name = app.model_name(model) if model is not None else "no model yet"
        print(f"rmm-tray: serving {name} at {settings.url} (Ctrl+C stops)", file=sys.stderr, flush=True)
        serve(app, settings)
    finally:
        app.close()
    return 0


def _model(app: Any, ref: str | None) -> Any:
    from rmm_tray.models.store import ModelNotFound, resolve_model

    if ref:
        return resolve_model(ref, app.home.models)
    try:
        return app.default_model()
    except ModelNotFound:
        return None  # requests name their model, or get a 404 listing what exists


def _loaded(future: Any) -> None:
    from rmm_tray.errors import describe

    exc = future.exception()
    if exc is not None:
        log.warning("the model did not load: %s", describe(exc))
