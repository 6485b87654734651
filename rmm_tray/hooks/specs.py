"""The hooks a plugin can implement. Each is documented in docs/plugins.md.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names
are the hooks below. It may accept any subset of a hook's arguments, by name.
One plugin failing (on import or inside a hook) is logged and reported by
``rmm-tray plugins``; the other plugins and the app keep working. Plugin code
runs on a thread of its own with a time limit (``[plugins] hook_timeout_s``,
``startup_timeout_s``): a plugin that overruns it is skipped for the session, and
nothing it raises (``SystemExit`` included) ends the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from rmm_tray.chat.drafts import MessageDraft
    from rmm_tray.chat.history import HistoryBackend
    from rmm_tray.chat.prompt_model import PromptVariable
    from rmm_tray.chat.templates import PromptTemplate
    from rmm_tray.hooks.app_api import PluginApp
    from rmm_tray.hooks.doctor import DoctorCheck
    from rmm_tray.hooks.engines import ChatEngine
    from rmm_tray.hooks.menu import MenuItem
    from rmm_tray.models.sources import ModelSource

PROJECT = "rmm_tray"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_prompt_templates(register: Callable[["PromptTemplate"], None], app: "PluginApp") -> None:
    """Add prompt templates: call ``register(PromptTemplate(...))`` once per template."""


@hookspec
def register_prompt_variables(register: Callable[["PromptVariable"], None], app: "PluginApp") -> None:
    """Add variables that prompts fill at the moment they are used: call
    ``register(PromptVariable(name, description, value))``; ``value()`` returns text
    and runs only when a prompt that names ``{{name}}`` is used."""


@hookspec
def register_model_sources(register: Callable[["ModelSource"], None], app: "PluginApp") -> None:
    """Add downloaders or importers of GGUF files: call ``register(source)``
    with a ``ModelSource`` instance. ``app.home.models`` is the models folder."""


@hookspec
def register_history_backends(register: Callable[["HistoryBackend"], None], app: "PluginApp") -> None:
    """Add chat-history backends: call ``register(backend)`` with a ``HistoryBackend``;
    the user picks one by its ``name`` in config.toml (``[history] backend``).
    ``app.home.chats`` is the folder the default backend uses."""


@hookspec
def register_engines(register: Callable[["ChatEngine"], None], app: "PluginApp") -> None:
    """Add chat engines beside the built-in llama.cpp one: call ``register(engine)``
    with a ``ChatEngine``; its models are named ``ENGINE:MODEL``. Do not ask the
    network here: ``models()`` is called when a list is shown."""


@hookspec
def startup(app: "PluginApp") -> None:
    """The app has started: ``app.home``, ``app.config`` and ``app.engine`` are ready.
    Runs in the background: nothing waits for it, other hooks may run before it returns."""


@hookspec
def shutdown(app: "PluginApp") -> None:
    """The app is about to exit. Release what ``startup`` took."""


@hookspec
def tray_menu_items(app: "PluginApp") -> list["MenuItem"] | None:
    """Return ``MenuItem`` entries for the tray menu's plugin section."""


@hookspec
def before_send(draft: "MessageDraft", app: "PluginApp") -> None:
    """A user message is about to go to the model. Set ``draft.text`` to rewrite it.
    Plugins run one after another; each sees the text the previous one left."""


@hookspec
def after_reply(draft: "MessageDraft", app: "PluginApp") -> None:
    """The model finished a reply. Set ``draft.text`` to rewrite what is shown and saved."""


@hookspec
def doctor_checks(app: "PluginApp") -> list["DoctorCheck"] | None:
    """Return ``DoctorCheck`` lines for ``rmm-tray doctor``: what the plugin needs
    and how to fix it. Do not ask the network; keep it quick."""
