"""What the popup page may ask of the core: one table, no GUI toolkit.

The popup process derives its ``window.pywebview.api`` forwarders from
``PAGE_API`` and the core derives its dispatch from it: a page method's target
(the chat controller, the models controller, or the desktop app itself), the
method called there, and the kinds of its arguments, which the core checks and
converts before calling. Calls are one way: the page's promise resolves when
the call has been handed to the core, and what the page should show comes back
as events. ``POPUP_LOCAL`` methods are answered in the popup process itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rmm_tray.errors import RmmError

TEXT = "text"  # a string; a number the page sent is taken as its text
TABLE = "table"  # a JSON object (the receiver checks its keys and values)
LIST = "list"  # a JSON array (likewise)
KINDS = (TEXT, TABLE, LIST)

CHAT, MODELS, DESKTOP, SETTINGS = "chat", "models", "desktop", "settings"
WELCOME = "welcome"
PROMPTS = "prompts"
HISTORY = "history"


@dataclass(frozen=True)
class PageMethod:
    target: str
    method: str
    #: (parameter name, kind) for each argument, in order.
    args: tuple[tuple[str, str], ...] = ()

    @property
    def params(self) -> list[str]:
        return [name for name, _ in self.args]


def _m(target: str, method: str, *args: str) -> PageMethod:
    return PageMethod(target, method, tuple((a.split(":")[0], a.split(":")[1]) for a in args))


PAGE_API: dict[str, PageMethod] = {
    # The chat view.
    "send": _m(CHAT, "send", "text:text"),
    "stop": _m(CHAT, "stop"),
    "regenerate": _m(CHAT, "regenerate"),
    # More of the last reply, cut off at the token limit (web/continue.js).
    "continue_reply": _m(CHAT, "continue_reply", "message_id:text"),
    # The chat's system prompt, edited in its header (web/system.js).
    "set_system": _m(CHAT, "set_system", "text:text"),
    "edit_last": _m(CHAT, "edit_last", "text:text"),
    # Versions: send an edit of a question as a new branch; show another version.
    "edit_message": _m(CHAT, "edit_message", "message_id:text", "text:text"),
    "choose_version": _m(CHAT, "choose_version", "message_id:text"),
    # The History view (web/history.js): list, search as typed, manage, open at a hit.
    "history_open": _m(HISTORY, "open"),
    "history_search": _m(HISTORY, "search", "query:text", "seq:text", "filters:table"),
    "history_open_at": _m(HISTORY, "open_at", "chat_id:text", "message_id:text"),
    "history_rename": _m(HISTORY, "rename", "chat_id:text", "title:text"),
    "history_pin": _m(HISTORY, "pin", "chat_id:text", "on:text"),
    "history_delete": _m(HISTORY, "delete", "chat_id:text"),
    "history_restore": _m(HISTORY, "restore", "chat_id:text"),
    "history_export": _m(HISTORY, "export", "chat_id:text", "fmt:text"),
    "new_chat": _m(CHAT, "new_chat"),
    "open_chat": _m(CHAT, "open_chat", "chat_id:text"),
    "list_chats": _m(CHAT, "list_chats"),
    "set_model": _m(CHAT, "set_model", "name:text"),
    # The models and the state again (the popup was shown: models may have changed).
    "refresh": _m(CHAT, "refresh_state"),
    # The page has loaded (again, after a popup restart).
    "ready": _m(DESKTOP, "page_ready"),
    # A hotkey recorder has the keys (Settings, the Architect): the global hotkeys
    # must not act on what the person is typing into it ("1" on, "0" off).
    "hold_hotkeys": _m(DESKTOP, "hold_hotkeys", "on:text"),
    # The Models view.
    "models_search": _m(MODELS, "search", "query:text", "sort:text"),
    "models_repo": _m(MODELS, "open_repo", "repo_id:text"),
    "models_pull": _m(MODELS, "pull", "repo_id:text", "name:text"),
    "models_cancel": _m(MODELS, "cancel", "job_id:text"),
    "models_dismiss": _m(MODELS, "dismiss", "job_id:text"),
    "models_downloads": _m(MODELS, "downloads"),
    "models_local": _m(MODELS, "local"),
    "models_delete": _m(MODELS, "delete", "name:text"),
    "models_set_default": _m(MODELS, "set_default", "name:text"),
    "models_use": _m(MODELS, "use", "name:text"),
    "models_discover": _m(MODELS, "discover"),
    "models_import": _m(MODELS, "import_model", "name:text"),
    "models_settings": _m(MODELS, "settings", "name:text"),
    "models_save_settings": _m(MODELS, "save_settings", "name:text", "values:table", "unset:list"),
    "models_reset_settings": _m(MODELS, "reset_settings", "name:text"),
    # OpenAI-compatible servers: the list, the Add server form's test and add, remove.
    "models_servers": _m(MODELS, "servers"),
    "models_test_server": _m(MODELS, "test_server", "name:text", "url:text", "api_key:text", "seq:text"),
    "models_add_server": _m(MODELS, "add_server", "name:text", "url:text", "api_key:text", "seq:text"),
    "models_remove_server": _m(MODELS, "remove_server", "name:text"),
    # The Settings view: the form, a value checked as typed, saved, a plugin switched.
    "settings_open": _m(SETTINGS, "open"),
    "settings_check": _m(SETTINGS, "check", "values:table"),
    "settings_save": _m(SETTINGS, "save", "values:table"),
    "settings_plugin": _m(SETTINGS, "set_plugin", "name:text", "enabled:text"),
    "settings_open_folder": _m(SETTINGS, "open_folder"),
    # The first run's short list of instruct models, with their fit here.
    "welcome_models": _m(WELCOME, "suggestions"),
    # Prompts: the list, a prompt's form and running it; the builder's preview
    # (seq: the page's request number, echoed back), save, versions, delete.
    "prompts_list": _m(PROMPTS, "list"),
    "prompts_form": _m(PROMPTS, "form", "name:text"),
    "prompts_run": _m(PROMPTS, "run", "name:text", "values:table"),
    "prompts_open": _m(PROMPTS, "open", "name:text"),
    "prompts_preview": _m(PROMPTS, "preview", "draft:table", "values:table", "seq:text"),
    "prompts_save": _m(PROMPTS, "save", "draft:table", "overwrite:text"),
    "prompts_delete": _m(PROMPTS, "delete", "name:text"),
    "prompts_versions": _m(PROMPTS, "versions", "name:text"),
    "prompts_restore": _m(PROMPTS, "restore", "name:text", "version:text"),
}

#: Answered by the popup process without the core: hide the window, the window
#: lost the focus, put text on the clipboard (returns whether it did).
POPUP_LOCAL = ("hide", "blurred", "copy", "save_export")


def convert(kind: str, value: Any) -> Any:
    if kind == TEXT:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise RmmError(f"expected text, got {_json_kind(value)}")
    if kind == TABLE:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        raise RmmError(f"expected a table of values, got {_json_kind(value)}")
    if kind == LIST:
        if value is None:
            return []
        if isinstance(value, list):
            return value
        raise RmmError(f"expected a list, got {_json_kind(value)}")
    raise ValueError(f"unknown argument kind {kind!r}")


def checked_call(name: Any, args: Any) -> tuple[PageMethod, list[Any]]:
    """The table's entry for a call from the page and its arguments, converted;
    RmmError when the page may not call that or sent the wrong arguments."""
    entry = PAGE_API.get(name) if isinstance(name, str) else None
    if entry is None:
        raise RmmError(f"the page may not call {name!r}")
    if not isinstance(args, list):
        raise RmmError(f"{name}: the arguments are not a list")
    if len(args) != len(entry.args):
        raise RmmError(f"{name} takes {len(entry.args)} argument(s), got {len(args)}")
    out = []
    for (param, kind), value in zip(entry.args, args):
        try:
            out.append(convert(kind, value))
        except RmmError as exc:
            raise RmmError(f"{name}: {param}: {exc}") from None
    return entry, out


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
