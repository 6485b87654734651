"""A model's own settings ([models."NAME"] in config.toml), checked the same way
whether the popup's form or `rmm-tray models set` changes them: typed as their
defaults, and within what llama.cpp can use (the rules of home/settings_check,
which config.toml's loader and the CLI's flags use too)."""

from __future__ import annotations

from typing import Any

from rmm_tray.home import settings_check
from rmm_tray.home.config import MODEL_SETTING_KEYS, Config, ConfigError
from rmm_tray.home.settings_check import CHAT_TEMPLATES

__all__ = ["CHAT_TEMPLATES", "LABELS", "LOAD_KEYS", "checked_setting", "checked_settings"]

#: Read when a model loads: changing one reloads the model on its next reply.
LOAD_KEYS = ("context_length", "gpu_layers", "chat_template", "flash_attn")
#: Names for errors, as the form labels its fields (the rules' own labels).
LABELS = {key: settings_check.RULES[section][key].label for key, section in MODEL_SETTING_KEYS.items()}
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
            raise ConfigError(f"{settings_check.shown(key)} is not a model setting")
    return clean, tuple(dict.fromkeys(k for k in dropped if k not in clean))


def checked_setting(key: str, value: Any) -> Any:
    """One value, typed as its default in config.toml and within what llama.cpp
    uses: the rule config.toml's loader and the CLI's flags apply too."""
    section = MODEL_SETTING_KEYS.get(key)
    if section is None:
        raise ConfigError(f"{settings_check.shown(key)} is not a model setting")
    try:
        return settings_check.parse(section, key, value, _DEFAULTS[section][key])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
