"""The app object: data home, config, plugins, history and (lazily) the engine.

The CLI and the tray share it; plugins receive it in their hooks. Nothing here
imports llama_cpp until the engine is first asked for.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.chat.history import HistoryBackend
from rmm_tray.errors import RmmError
from rmm_tray.home.config import Config, ConfigError
from rmm_tray.home.paths import DataHome
from rmm_tray.hooks.host import (
    FIRST_PARTY,
    HOOK_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    PluginHost,
    allowed_from_env,
)

# Prompt templates, model sources and the models folder are imported where they
# are used: `rmm-tray chats search` needs none of them and pays for each import.
if TYPE_CHECKING:
    from collections.abc import Callable

    from rmm_tray.chat.drafts import MessageDraft
    from rmm_tray.chat.templates import PromptTemplate
    from rmm_tray.engine import Engine, EngineSettings, EngineStatus, GenParams, LoadedModel
    from rmm_tray.hooks.engines import ChatEngine
    from rmm_tray.models.downloads import Downloader
    from rmm_tray.models.sources import ModelSource

log = logging.getLogger(__name__)

USER_TEMPLATES = "prompts folder"

#: The history backends of first-party plugins: backend name -> (plugin, module).
#: First-party plugins load before all others and win a name tie, so when
#: config.toml names one of these, importing that one plugin gives the same
#: backend as loading them all, and a history command starts faster.
FIRST_PARTY_HISTORY = {
    "jsonl": ("history_jsonl", "rmm_tray.plugins.history_jsonl"),
    "sqlite": ("history_sqlite", "rmm_tray.plugins.history_sqlite"),
}


class App:
    def __init__(self, home: DataHome, config: Config, *, safe_mode: bool = False) -> None:
        self.home = home
        self.config = config
        self.safe_mode = safe_mode
        self._engine: Engine | None = None
        #: Called (on the engine thread) when the model in use changes or starts
        #: to: the desktop shows a switch the API or the CLI asked for.
        self.model_listeners: list[Callable[[LoadedModel | None], None]] = []
        self._started = False

    @classmethod
    def open(cls, *, safe_mode: bool = False) -> "App":
        home = DataHome.from_env().ensure()
        config = Config.load(home.config_file)
        app = cls(home, config, safe_mode=safe_mode)
        from rmm_tray.models.starter import install_starter

        install_starter(home.models, home.root)
        return app

    # -- plugins -------------------------------------------------------------

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The ``[plugins.NAME]`` table of config.toml (a copy; empty when there is none)."""
        return self.config.plugin_config(name)

    def _new_host(self) -> PluginHost:
        settings = self.config["plugins"]
        limits = {key: settings.get(key, default) for key, default in (
            ("hook_timeout_s", HOOK_TIMEOUT_S), ("startup_timeout_s", STARTUP_TIMEOUT_S))}
        for key, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"config.toml: plugins.{key} should be a number of seconds "
                                  f"above 0, got {value!r}")
        return PluginHost(**limits)

    @cached_property
    def plugins(self) -> PluginHost:
        host = self._new_host()
        host.load(
            dropin_dir=self.home.plugins,
            safe_mode=self.safe_mode,
            allow=allowed_from_env(),
            disabled=self.config["plugins"]["disabled"],
        )
        return host

    def templates(self) -> dict[str, PromptTemplate]:
        """Plugin templates, then the prompts/ folder: a person's own file wins."""
        from rmm_tray.chat.templates import PromptTemplate, TemplateError, load_template_file

        found: dict[str, PromptTemplate] = {}
        for plugin, template in self.plugins.collect(
            "register_prompt_templates", lambda o: isinstance(o, PromptTemplate),
            "PromptTemplate", app=self,
        ):
            found[template.name] = _with_source(template, plugin)
        for path in sorted(self.home.prompts.glob("*.toml")):
            try:
                found[path.stem] = _with_source(load_template_file(path), USER_TEMPLATES)
            except TemplateError as exc:
                log.warning("prompt template skipped: %s", exc)
        return found

    def template(self, name: str) -> PromptTemplate:
        from rmm_tray.chat.templates import TemplateError

        templates = self.templates()
        if name not in templates:
            raise TemplateError(f"no prompt template '{name}'; see 'rmm-tray prompts list'")
        return templates[name]

    def sources(self) -> list[ModelSource]:
        from rmm_tray.models.sources import ModelSource

        return [s for _, s in self.plugins.collect(
            "register_model_sources", lambda o: isinstance(o, ModelSource), "ModelSource", app=self
        )]

    def remote_sources(self) -> list[ModelSource]:
        return [s for s in self.sources() if s.remote]

    @cached_property
    def downloads(self) -> "Downloader":
        from rmm_tray.models.downloads import Downloader

        return Downloader(self.home.models, self.remote_sources)

    @cached_property
    def history(self) -> HistoryBackend:
        wanted = self.config["history"]["backend"]
        plugins = self.plugins if "plugins" in self.__dict__ else None
        if plugins is None and wanted in FIRST_PARTY_HISTORY:
            from importlib import import_module

            name, module = FIRST_PARTY_HISTORY[wanted]
            plugins = self._new_host()
            plugins.register(import_module(module), name, FIRST_PARTY)
        if plugins is None:
            plugins = self.plugins
        backends = plugins.collect(
            "register_history_backends", lambda o: isinstance(o, HistoryBackend),
            "HistoryBackend", app=self,
        )
        for _, backend in backends:
            if backend.name == wanted:
                return backend
        names = ", ".join(b.name for _, b in backends) or "none"
        raise RmmError(f"history backend '{wanted}' is not available (have: {names})")

    def filter_message(self, hook: str, draft: MessageDraft) -> str:
        """Run before_send / after_reply: each plugin sees the previous one's text.
        A plugin that fails or overruns its time limit leaves the text as it was."""
        self.plugins.filter(hook, draft, app=self)
        if not isinstance(draft.text, str):
            raise RmmError(f"a {hook} plugin left a non-text message")
        return draft.text

    # -- engine --------------------------------------------------------------

    @cached_property
    def engines(self) -> dict[str, "ChatEngine"]:
        """Plugins' chat engines by name (their models are named ENGINE:MODEL)."""
        from rmm_tray.hooks.engines import SEPARATOR, ChatEngine

        found: dict[str, ChatEngine] = {}
        for plugin, engine in self.plugins.collect(
            "register_engines", lambda o: isinstance(o, ChatEngine), "ChatEngine", app=self,
        ):
            name = str(engine.name)
            if not name or SEPARATOR in name or "/" in name or name in found:
                log.warning("plugin %s: engine name %r is empty, taken or holds ':' or '/'; skipped",
                            plugin, name)
                continue
            found[name] = engine
        return found

    def resolve_model(self, ref: str) -> "Path | str":
        """What ``-m REF`` names: ENGINE:MODEL for a plugin's engine (a str), else a
        local model file (see ``models.store.resolve_model``)."""
        from rmm_tray.hooks.engines import split_name
        from rmm_tray.models.store import resolve_model

        parts = split_name(ref)
        if parts is not None and parts[0] in self.engines:
            return ref
        return resolve_model(ref, self.home.models)

    def chat(self, messages: list[dict[str, str]], params: "GenParams", *, model: "Path | str",
             chat_id: str | None = None, continue_reply: bool = False) -> Any:
        """The reply's stream: from a plugin's engine for ENGINE:MODEL, else from
        the local engine. The one switch between them; the chat path is the same."""
        if isinstance(model, str):
            from rmm_tray.engine.types import EngineError
            from rmm_tray.hooks.engines import EngineStream, split_name

            parts = split_name(model)
            engine = self.engines.get(parts[0]) if parts else None
            if engine is None or parts is None:
                raise EngineError(f"no engine serves '{model}'; see 'rmm-tray remote list'")
            if continue_reply:
                # An OpenAI server answers a new turn; it cannot grow the last one.
                raise EngineError(f"{parts[0]}: Continue works with local models only")
            return EngineStream(engine, messages, params, parts[1])
        return self.engine.chat(messages, params, model=model, chat_id=chat_id,
                                continue_reply=continue_reply)

    def model_name(self, model: "Path | str") -> str:
        """A model's name in config.toml and the CLI (its path in models/, or
        ENGINE:MODEL for a plugin's engine)."""
        if isinstance(model, str):
            return model
        from rmm_tray.models.store import model_name

        return model_name(model, self.home.models)

    def engine_settings(self, model: Path | None = None) -> "EngineSettings":
        """[model], with ``model``'s own [models."NAME"] table over it."""
        from rmm_tray.engine import EngineSettings

        name = self.model_name(model) if model is not None else ""
        value = self.config.model_value
        return EngineSettings(
            context_length=int(value(name, "context_length")),
            gpu_layers=int(value(name, "gpu_layers")),
            threads=int(self.config["model"]["threads"]),
            chat_template=str(value(name, "chat_template")),
            flash_attn=str(value(name, "flash_attn")),
            state_cache_bytes=int(self.config["engine"]["state_cache_mib"]) << 20,
        )

    def gen_params(self, model: Path | None = None, **explicit: Any) -> "GenParams":
        """Sampling for a reply from ``model``: [generation], its own table over
        that, and ``explicit`` values (a CLI flag, a UI control; None = not given)
        over both."""
        from rmm_tray.engine import GenParams
        from rmm_tray.home.config import MODEL_SETTING_KEYS
        from rmm_tray.models.settings import checked_setting

        name = self.model_name(model) if model is not None else ""
        value = self.config.model_value
        # A flag or a control goes through the rule config.toml's values do.
        given = {k: checked_setting(k, v) if k in MODEL_SETTING_KEYS else v
                 for k, v in explicit.items() if v is not None}
        return GenParams(**{
            "max_tokens": int(value(name, "max_tokens")),
            "temperature": float(value(name, "temperature")),
            "top_p": float(value(name, "top_p")),
            "top_k": int(value(name, "top_k")),
            "min_p": float(value(name, "min_p")),
            "repeat_penalty": float(value(name, "repeat_penalty")),
            "speculative": str(value(name, "speculative")),
            **given,
        })

    def default_model(self) -> Path:
        from rmm_tray.models.store import default_model

        return default_model(self.home.models, str(self.config["model"]["default"]))

    @property
    def engine_started(self) -> bool:
        return self._engine is not None

    def engine_status(self) -> "EngineStatus":
        """The engine's state without starting it (and importing llama.cpp)."""
        from rmm_tray.engine.types import EngineStatus

        return self._engine.status() if self._engine is not None else EngineStatus("idle", None)

    @property
    def loaded(self) -> "LoadedModel | None":
        return self._engine.loaded if self._engine is not None else None

    @property
    def engine(self) -> "Engine":
        if self._engine is None:
            from rmm_tray.engine import Engine

            self._engine = Engine(self.engine_settings(), settings_for=self.engine_settings,
                                  name_for=self.model_name, on_model=self._model_changed)
        return self._engine

    def _model_changed(self, loaded: "LoadedModel | None") -> None:
        for listener in list(self.model_listeners):
            try:
                listener(loaded)
            except Exception:
                log.exception("a model-change listener failed")

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Run the startup hooks in the background: a slow or stuck plugin must
        not hold up the tray, the popup or a command (each has its time limit)."""
        if not self._started:
            self._started = True
            plugins = self.plugins  # loaded here, so failures to load show now
            threading.Thread(target=plugins.call_each, args=("startup",), kwargs={"app": self},
                             name="rmm-plugin-startup", daemon=True).start()

    def close(self) -> None:
        if self._started:
            self.plugins.call_each("shutdown", app=self)
            self._started = False
        if "history" in self.__dict__:
            close = getattr(self.history, "close", None)
            if callable(close):
                close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def _with_source(template: PromptTemplate, source: str) -> PromptTemplate:
    return replace(template, source=source)
