"""Changes to config.toml made by the app (default model, per-model settings).

tomlkit edits the document in place, so a person's comments, order and spacing
survive. Every change is checked as a whole config before it is written, and
written atomically: a bad value leaves the file as it was. A config.toml that is
a link stays one (the change lands in its target), and each edit holds the
file's lock from reading to writing, so edits made at the same time by several
processes (eight `models set` at once) all land.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from rmm_tray.home import settings_check
from rmm_tray.home.atomic import atomic_write_text, locked
from rmm_tray.home.config import (
    DEFAULT_CONFIG_TEXT,
    MODEL_SETTING_KEYS,
    Config,
    ConfigError,
    check_model_setting,
    check_model_type,
)

_DEFAULTS = Config.defaults()


def parse_value(raw: str) -> Any:
    """A value typed on a command line, read as a TOML scalar: ``8192`` is an int,
    ``0.6`` a float, ``true`` a bool, ``"x"`` a string; anything else that is not
    TOML (``chatml``) is taken as a bare string."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{raw!r} is not a single value")
    return value


def parse_assignments(pairs: list[str], model: str) -> dict[str, Any]:
    """``["key=value", ...]`` into checked per-model settings; ConfigError on the
    first bad one: its type as config.toml words it, its range as the form does."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got {pair!r}")
        value = parse_value(raw.strip())
        check_model_type(model, key, value)
        section = MODEL_SETTING_KEYS[key]
        try:
            out[key] = settings_check.parse(section, key, value, _DEFAULTS[section][key])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return out


def edit_config(path: Path, change: Callable[[Any], None]) -> Config:
    """Apply ``change`` to the tomlkit document of ``path`` (the commented
    defaults when there is no file yet), check the result, write it; return the
    new Config."""
    import tomlkit

    with locked(path):
        try:
            text = path.read_text(encoding="utf-8") if path.exists() else DEFAULT_CONFIG_TEXT
            doc = tomlkit.parse(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config.toml: cannot read: {exc}") from None
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigError(f"config.toml: {exc}") from None
        change(doc)
        out = tomlkit.dumps(doc)
        config = Config.from_dict(tomllib.loads(out), path)
        atomic_write_text(path, out)  # through a link: the link stays, its target changes
    return config


def _table(doc: Any, name: str, *, super_table: bool = False) -> Any:
    import tomlkit

    if name not in doc:
        doc[name] = tomlkit.table(is_super_table=super_table)
    return doc[name]


def set_default_model(path: Path, name: str) -> Config:
    """``[model] default = name``."""
    return edit_config(path, lambda doc: _table(doc, "model").__setitem__("default", name))


def update_model_settings(
    path: Path, model: str, values: Mapping[str, Any], *, unset: tuple[str, ...] = (),
    reset: bool = False,
) -> Config:
    """Set ``values`` in ``[models."model"]``, after dropping the keys in ``unset``
    (or all of them with ``reset``). A table left empty is removed."""
    for key, value in values.items():
        check_model_setting(model, key, value)
    for key in unset:
        if key not in MODEL_SETTING_KEYS:
            check_model_setting(model, key, None)  # raises: not a per-model setting

    def change(doc: Any) -> None:
        import tomlkit

        models = _table(doc, "models", super_table=True)
        table = models.get(model)
        if table is None:
            table = models[model] = tomlkit.table()
        for key in list(table) if reset else unset:
            table.pop(key, None)
        for key, value in values.items():
            table[key] = value
        if not table:
            del models[model]

    return edit_config(path, change)


def forget_model(path: Path, model: str, *, clear_default: bool | None = None) -> Config:
    """Drop a removed model's table and empty ``[model] default`` if it named the
    model: by default when it is exactly ``model``; ``clear_default=True`` when
    the caller knows it named the model otherwise (by a part of its name)."""

    def change(doc: Any) -> None:
        models = doc.get("models")
        if models is not None and model in models:
            del models[model]
        section = doc.get("model")
        if section is None or not section.get("default"):
            return
        if clear_default or (clear_default is None and section.get("default") == model):
            section["default"] = ""

    return edit_config(path, change)
