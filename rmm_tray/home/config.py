"""config.toml: written once with commented defaults, read with tomllib.

The commented template below is the single source of the defaults, so the file a
person edits and the values the code falls back to cannot drift apart.
"""

from __future__ import annotations

import copy
import logging
import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from rmm_tray.errors import RmmError
from rmm_tray.home import settings_check
from rmm_tray.home.atomic import atomic_write_text, locked

log = logging.getLogger(__name__)

DEFAULT_CONFIG_TEXT = """\
# RunMyModel tray settings. Delete a line to get its default back.

[model]
# Model loaded on first use: a file name in models/, a unique part of one, or a path.
# Empty: the first model found in models/.
default = ""
# Context length in tokens; clamped to what the model was trained for.
context_length = 4096
# Layers offloaded to the GPU: -1 = all of them when llama.cpp has GPU support, 0 = CPU only.
gpu_layers = -1
# CPU threads for generation; 0 = the number of physical cores.
threads = 0
# Chat template override: "" = the GGUF's own template (or a per-architecture fallback),
# else a llama-cpp-python chat format name such as "chatml", "gemma" or "llama-3".
chat_template = ""
# Flash attention: "auto" (llama.cpp's default: on where the backend has it), "on" or "off".
flash_attn = "auto"

[generation]
max_tokens = 512
temperature = 0.7
top_p = 0.95
top_k = 40
min_p = 0.05
# 1.0 is off, as in llama.cpp: a penalty walks the whole vocabulary on every token
# (about 5 % of decode speed on a 262k-token vocabulary).
repeat_penalty = 1.0
# "prompt-lookup": guess the next tokens from the prompt and check them in one batch,
# for replies that copy the prompt (rewrite, fix, translate in place). Greedy
# sampling (temperature = 0) only; the reply is the same, only sooner. "" = off.
speculative = ""

[engine]
# Memory kept for the states of recent chats, so going back to one does not re-read it (MiB).
state_cache_mib = 512

[server]
# The local OpenAI- and Anthropic-compatible API (/v1/...), on the tray's own engine.
# `rmm-tray serve` runs it without the tray, whatever `enabled` says.
enabled = false
# Loopback only by default; any other address needs api_key.
host = "127.0.0.1"
port = 8765
# Clients send it as "Authorization: Bearer KEY" (or Anthropic's "x-api-key: KEY").
# Empty: no key, which only a loopback address allows.
api_key = ""
# Web pages (origins such as "http://localhost:3000") allowed to call the API from a
# browser. Empty: no CORS headers at all.
cors_origins = []
# Save chats made through the API to history (source "api").
save_chats = false
# The largest request body accepted, in bytes.
max_body_bytes = 8388608
# Requests that may wait for the engine while it serves another; one more gets
# "503 busy" with Retry-After.
max_waiting = 16

[history]
# Chat-history backend, by name; plugins can add their own.
backend = "jsonl"

[ui]
# Global hotkey that shows and hides the chat (pynput syntax). On Wayland, bind
# `rmm-tray toggle` as a desktop shortcut instead.
hotkey = "<ctrl>+<alt>+<space>"
# Hide the chat when it loses focus.
hide_on_blur = false
# Colours of the popup: "system" (follow the desktop), "light" or "dark".
theme = "system"
# What the popup shows when it opens: "last" (the view it was on) or "chat".
open_on = "last"

[plugins]
# Third-party plugins to skip, by name. RMM_PLUGINS=name,name loads only those named.
disabled = []
# Seconds a plugin may take before it is skipped for the rest of the session:
# in any hook but startup, then in startup (which runs in the background) and
# while it is imported.
hook_timeout_s = 5.0
startup_timeout_s = 30.0
# A plugin's own settings go in a table named after the plugin. The Hugging Face
# plugin's, for example:
#
# [plugins.huggingface]
# # Token for gated repositories. Empty: HF_TOKEN, or the token `hf auth login` stored.
# token = ""
# # Another Hub endpoint, such as a mirror. Empty: HF_ENDPOINT, else huggingface.co.
# endpoint = ""

[models]
# Settings for one model, over [model] and [generation]: a table named after the
# model as 'rmm-tray models list' shows it. Any of context_length, gpu_layers,
# chat_template, flash_attn, max_tokens, temperature, top_p, top_k, min_p,
# repeat_penalty, speculative.
# 'rmm-tray models set NAME key=value' writes them for you. For example:
#
# [models."bartowski/Llama-3.2-3B-Instruct-GGUF/Llama-3.2-3B-Instruct-Q4_K_M.gguf"]
# context_length = 8192
# temperature = 0.6
"""

#: What a [models."NAME"] table may set, and the section whose default it overrides.
MODEL_SETTING_KEYS: dict[str, str] = {
    "context_length": "model",
    "gpu_layers": "model",
    "chat_template": "model",
    "flash_attn": "model",
    "max_tokens": "generation",
    "temperature": "generation",
    "top_p": "generation",
    "top_k": "generation",
    "min_p": "generation",
    "repeat_penalty": "generation",
    "speculative": "generation",
}


class ConfigError(RmmError):
    """config.toml cannot be read; the message is one line. ``where`` is the
    table and key of a bad value, for the loader to add its line number."""

    def __init__(self, message: str, *, where: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.where = where


def _defaults() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_CONFIG_TEXT)


_DEFAULTS = _defaults()


#: Unknown keys already warned about, so a process says it once, not per load.
_WARNED: set[str] = set()
#: Tables whose keys belong to someone else: plugins' own and per-model tables
#: (checked on their own).
_OPEN_TABLES = ("plugins", "models")
#: Arrays of tables with no defaults, read by their plugin: [[remote]] servers.
_OPEN_ARRAYS = ("remote",)


def _merge(base: dict[str, Any], over: dict[str, Any], where: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in base and where.rstrip(".") not in _OPEN_TABLES and (
                where or key not in _OPEN_ARRAYS):
            _warn_unknown(f"[{where.rstrip('.')}] {key}" if where else key)
        if isinstance(out.get(key), dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config.toml: [{where}{key}] must be a table")
            out[key] = _merge(out[key], value, f"{where}{key}.")
            continue
        default = base.get(key)
        if default is not None and not _same_kind(default, value):
            raise ConfigError(
                f"config.toml: {where}{key} should be {type(default).__name__}, "
                f"got {value!r}"
            )
        out[key] = value
    return out


def _warn_unknown(name: str) -> None:
    # A typo or a setting from another version: the app runs on, but says it once.
    if name not in _WARNED:
        _WARNED.add(name)
        log.warning("config.toml: unknown setting %s is ignored", name)


def _check_values(data: dict[str, Any]) -> None:
    """Each value of a known section within what the app can use."""
    for section, rules in settings_check.RULES.items():
        for key in rules:
            what = settings_check.problem(section, key, data[section][key])
            if what is not None:
                raise ConfigError(f"config.toml: [{section}] {key} must be {what}, "
                                  f"got {_shown(data[section][key])}", where=(section, key))
    disabled = data["plugins"]["disabled"]
    if not all(isinstance(name, str) for name in disabled):
        raise ConfigError(f"config.toml: [plugins] disabled must be a list of plugin names, "
                          f"got {_shown(disabled)}", where=("plugins", "disabled"))


def _shown(value: Any) -> str:
    return repr(value)[:60]


def check_model_type(model: str, key: str, value: Any) -> None:
    """One per-model setting against the type of the default it overrides."""
    where = f'models."{model}".{key}'
    section = MODEL_SETTING_KEYS.get(key)
    if section is None:
        known = ", ".join(MODEL_SETTING_KEYS)
        raise ConfigError(f"config.toml: {where} is not a per-model setting (have: {known})")
    default = _DEFAULTS[section][key]
    if not _same_kind(default, value):
        raise ConfigError(f"config.toml: {where} should be {type(default).__name__}, got {value!r}")


def check_model_setting(model: str, key: str, value: Any) -> None:
    """One per-model setting: the type of the default it overrides, and the range
    of that setting (the same rule as in [model] and [generation])."""
    check_model_type(model, key, value)
    what = settings_check.problem(MODEL_SETTING_KEYS[key], key, value)
    if what is not None:
        raise ConfigError(f'config.toml: [models."{model}"] {key} must be {what}, '
                          f"got {_shown(value)}", where=("models", model, key))


def _check_plugins(plugins: dict[str, Any]) -> None:
    # Any table is a plugin's own: the plugin, not the core, knows its keys.
    for name, table in plugins.items():
        if name not in _DEFAULTS["plugins"] and not isinstance(table, dict):
            raise ConfigError(f"config.toml: plugins.{name} must be a table ([plugins.{name}]), "
                              f"got {table!r}")


def _check_models(models: Any) -> None:
    for name, table in models.items():
        if not isinstance(table, dict):
            raise ConfigError(f'config.toml: [models."{name}"] must be a table')
        for key, value in table.items():
            check_model_setting(name, key, value)


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


class Config:
    """Settings with defaults filled in. Read with ``cfg["model"]["context_length"]``."""

    def __init__(self, data: dict[str, Any], path: Path | None = None) -> None:
        self.data = data
        self.path = path

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.data[section]

    def get(self, section: str, default: Any = None) -> Any:
        """A section, or ``default`` when config.toml has none and it has no defaults
        (a table the core does not know, such as one an older version used)."""
        return self.data.get(section, default)

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The ``[plugins.NAME]`` table: a copy, empty when there is none."""
        table = self.data["plugins"].get(name) if name not in _DEFAULTS["plugins"] else None
        return copy.deepcopy(table) if isinstance(table, dict) else {}

    def model_settings(self, name: str) -> dict[str, Any]:
        """The [models."NAME"] overrides of one model (empty when it has none)."""
        return dict(self.data.get("models", {}).get(name, {}))

    def model_value(self, name: str, key: str) -> Any:
        """A setting as it applies to one model: its own value, else the default."""
        own = self.data.get("models", {}).get(name, {})
        return own[key] if key in own else self.data[MODEL_SETTING_KEYS[key]][key]

    @classmethod
    def defaults(cls) -> "Config":
        return cls(copy.deepcopy(_DEFAULTS))

    @classmethod
    def load(cls, path: Path, *, create: bool = True) -> "Config":
        if not path.exists():
            if not create:
                return cls(copy.deepcopy(_DEFAULTS), path)
            # Under the edit lock, and only if still absent: another process may
            # have written its first edit since the check above.
            with locked(path):
                if not path.exists():
                    atomic_write_text(path, DEFAULT_CONFIG_TEXT)
                    return cls(copy.deepcopy(_DEFAULTS), path)
        try:
            text = path.read_text(encoding="utf-8")
            user = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config.toml: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config.toml: cannot read: {exc}") from None
        try:
            return cls.from_dict(user, path)
        except ConfigError as exc:
            line = line_of(text, exc.where) if exc.where else None
            if line is None:
                raise
            raise ConfigError(f"{exc} (line {line})", where=exc.where) from None

    @classmethod
    def from_dict(cls, user: dict[str, Any], path: Path | None = None) -> "Config":
        """The defaults with ``user`` over them, checked; raises ConfigError."""
        data = _merge(_DEFAULTS, user)
        _check_plugins(data["plugins"])
        _check_values(data)
        _check_models(data["models"])
        return cls(data, path)


_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def line_of(text: str, where: tuple[str, ...]) -> int | None:
    """The line (from 1) of ``where`` (tables..., key) in a TOML text, when it is
    written plainly (``[table]`` then ``key = ...``); None otherwise. tomllib keeps
    no positions, and a bad value is rare enough to scan for."""
    *table, key = where
    current: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            try:
                parsed = tomllib.loads(f"[{header[1]}]")
            except tomllib.TOMLDecodeError:
                continue
            current = []
            while isinstance(parsed, dict) and len(parsed) == 1:
                name, parsed = next(iter(parsed.items()))
                current.append(name)
            continue
        if current == table:
            written = line.split("=", 1)[0].strip() if "=" in line else ""
            if written.strip("\"'") == key:
                return number
    return None
