"""A model's own settings ([models."NAME"] in config.toml), checked the same way
whether the popup's form or `rmm-tray models set` changes them: typed as their
defaults, and within what llama.cpp can use."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rmm_tray.home.config import MODEL_SETTING_KEYS, Config, ConfigError

#: Read when a model loads: changing one reloads the model on its next reply.
LOAD_KEYS = ("context_length", "gpu_layers", "chat_template")
#: The chat_template names the engine knows (engine.chat_format.FALLBACKS; a test
#: keeps the two equal). Kept here because that module imports llama.cpp.
CHAT_TEMPLATES = ("chatml", "gemma", "llama-3")
#: Names for errors, as the form labels its fields.
LABELS = {
    "context_length": "Context length", "gpu_layers": "GPU layers", "chat_template": "Chat template",
    "temperature": "Temperature", "top_p": "Top P", "top_k": "Top K", "min_p": "Min P",
    "repeat_penalty": "Repeat penalty", "max_tokens": "Max tokens",
}
#: What config.toml's types allow but llama.cpp cannot use: (check, what it must be).
#: The engine raises a context under 256 to 256, so the form does not offer one.
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "context_length": (lambda v: v >= 256, "at least 256 tokens"),
    "gpu_layers": (lambda v: v >= -1, "-1 (all), 0 (none) or a number of layers"),
    "max_tokens": (lambda v: v >= 1, "at least 1"),
    "temperature": (lambda v: v >= 0, "0 or more"),
    "top_p": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "top_k": (lambda v: v >= 0, "0 (off) or more"),
    "min_p": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "repeat_penalty": (lambda v: v > 0, "more than 0 (1 is off)"),
}
_DEFAULTS = Config.defaults()


def checked_settings(values: Any, unset: Any = ()) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The form's ``values`` as config.toml stores them, and the keys to drop
    (``unset`` and the fields left empty). ConfigError, one line, on the first bad one."""
    if not isinstance(values, dict) or not isinstance(unset, (list, tuple)):
        raise ConfigError("settings must be a table of values and a list of keys to unset")
    clean: dict[str, Any] = {}
    dropped = [str(key) for key in unset]
    for key, value in values.items():
        key = str(key)
        if isinstance(value, str) and not value.strip():
            dropped.append(key)
            continue
        clean[key] = checked_setting(key, value)
    for key in dropped:
        if key not in MODEL_SETTING_KEYS:
            raise ConfigError(f"'{key}' is not a model setting")
    return clean, tuple(dict.fromkeys(k for k in dropped if k not in clean))


def checked_setting(key: str, value: Any) -> Any:
    """One value, typed as its default in config.toml and within what llama.cpp uses."""
    section = MODEL_SETTING_KEYS.get(key)
    if section is None:
        raise ConfigError(f"'{key}' is not a model setting")
    label = LABELS[key]
    default = _DEFAULTS[section][key]
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{label} should be text, got {value!r}")
        value = value.strip()
        if value not in CHAT_TEMPLATES:
            raise ConfigError(f"{label} '{value}' is not one the engine knows "
                              f"(have: {', '.join(CHAT_TEMPLATES)}; empty: the model's own)")
        return value
    number = _number(value, whole=isinstance(default, int))
    if number is None:
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise ConfigError(f"{label} should be {kind}, got {_shown(value)}")
    check, what = RANGES[key]
    if not check(number):
        raise ConfigError(f"{label} must be {what}, got {_shown(value)}")
    return number


def _number(value: Any, *, whole: bool) -> int | float | None:
    """``value`` (a number, or text as typed) as an int or a float; None when it is
    not one. A bool is not a number here, though Python says it is."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            return None
    if whole:
        return value if isinstance(value, int) else None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)  # written as 0.0, as [generation] is, not 0
    return None


def _shown(value: Any) -> str:
    return repr(value.strip() if isinstance(value, str) else value)[:40]
