"""Reading and changing one setting by its dotted name (``generation.temperature``):
the one way `rmm-tray config get|set` and the popup's Settings view do it.

A value arrives as a person typed it (text) or as a form sends it (a number, a
bool); it is checked by the rule of home/settings_check, the same one config.toml's
loader applies, and written in place by home/config_edit (comments kept, locked,
atomic). One bad value in a batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rmm_tray.home import settings_check
from rmm_tray.home.config import Config, ConfigError
from rmm_tray.home.config_edit import _table, edit_config, parse_value

_DEFAULTS = Config.defaults()

#: Settings read when the app starts: a change is saved and applies from the next start.
RESTART_KEYS = frozenset({
    "history.backend", "plugins.disabled", "plugins.hook_timeout_s", "plugins.startup_timeout_s",
    "engine.state_cache_mib",
})


def known_names() -> list[str]:
    """Every ``section.key`` of config.toml's own sections (not plugins' tables
    nor per-model ones, which have their own commands)."""
    names = []
    for section, values in _DEFAULTS.data.items():
        if section == "models":
            continue
        for key, default in values.items():
            if not isinstance(default, dict):
                names.append(f"{section}.{key}")
    return names


def split_name(name: str) -> tuple[str, str]:
    """``"ui.hotkey"`` into its section and key; ConfigError naming the settings
    there are when it is not one of them."""
    section, _, key = str(name).strip().partition(".")
    if f"{section}.{key}" not in known_names():
        hint = ""
        if section == "models":
            hint = "; a model's own settings: rmm-tray models set NAME key=value"
        elif section == "plugins" and key:
            hint = "; a plugin's own table: rmm-tray config edit"
        raise ConfigError(f"{settings_check.shown(name)} is not a setting (have: "
                          f"{', '.join(known_names())}){hint}")
    return section, key


def label(name: str) -> str:
    section, key = split_name(name)
    found = settings_check.rule(section, key)
    return found.label if found else key.replace("_", " ").capitalize()


def get(config: Config, name: str) -> Any:
    section, key = split_name(name)
    return config[section][key]


def checked(name: str, value: Any) -> Any:
    """``value`` as config.toml stores it, by the setting's rule; ConfigError
    (one line, the setting named as a person knows it) when it cannot be."""
    section, key = split_name(name)
    default = _DEFAULTS[section][key]
    if isinstance(default, list):
        if isinstance(value, str):
            text = value.strip()
            value = [v.strip() for v in text.split(",") if v.strip()] if text else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{label(name)} should be a list of names, got {settings_check.shown(value)}")
        value = [v.strip() for v in value]
        what = settings_check.problem(section, key, value)
        if what is not None:
            raise ConfigError(f"{label(name)} must be {what}, got {settings_check.shown(value)}")
        return value
    if isinstance(value, str) and not isinstance(default, str):
        typed = parse_value(value.strip()) if value.strip() else value
        # A bool typed as text ("true") is one; numbers are read by the rule itself.
        value = typed if isinstance(typed, bool) else value
    try:
        return settings_check.parse(section, key, value, default)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def from_command_line(name: str, raw: str) -> Any:
    """What `config set NAME VALUE` typed: a TOML value (``0.6``, ``true``,
    ``"x"``) or bare text (``<ctrl>+k``), then the setting's rule."""
    section, key = split_name(name)
    default = _DEFAULTS[section][key]
    value: Any = raw
    if isinstance(default, str):
        parsed = parse_value(raw.strip()) if raw.strip() else ""
        value = parsed if isinstance(parsed, str) else raw
    elif isinstance(default, list) and raw.strip().startswith("["):
        import sys

        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{label(name)}: {exc}") from None
    return checked(name, value)


def set_values(path: Path, values: Mapping[str, Any]) -> Config:
    """Write checked ``values`` (by dotted name) into config.toml in place and
    return the new Config. All are checked first: a bad one writes nothing."""
    clean = {name: checked(name, value) for name, value in values.items()}

    def change(doc: Any) -> None:
        for name, value in clean.items():
            section, key = split_name(name)
            _table(doc, section)[key] = value

    return edit_config(path, change)


#: Whole sections read when the app starts.
RESTART_SECTIONS = ("server.",)


def needs_restart(names: list[str] | tuple[str, ...]) -> list[str]:
    return [n for n in names if n in RESTART_KEYS or n.startswith(RESTART_SECTIONS)]
