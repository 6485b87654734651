"""What a plugin may use of the app object its hooks receive.

``rmm_tray.app.App`` is the one implementation; the Protocol keeps the hooks'
annotations (and a plugin's type checker) to the documented part of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rmm_tray.engine import Engine
    from rmm_tray.home.config import Config
    from rmm_tray.home.paths import DataHome


class PluginApp(Protocol):
    @property
    def home(self) -> "DataHome":
        """The data home: ``root``, ``models``, ``prompts``, ``chats``, ``plugins``,
        ``logs`` and ``config_file``."""

    @property
    def config(self) -> "Config":
        """The settings from config.toml, defaults filled in: ``config["model"]["context_length"]``."""

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The ``[plugins.NAME]`` table of config.toml (a copy; empty when there is none)."""

    @property
    def engine(self) -> "Engine":
        """The model engine, created (and llama.cpp imported) on first use."""
