"""RunMyModel tray: a local llama.cpp assistant in the system tray.

This module is the public plugin API. Plugins import only from here:

    from rmm_tray import hookimpl, PromptTemplate, ModelSource, HistoryBackend

It stays import-light (no llama_cpp, no GUI toolkits) so that the CLI starts fast:
each name is imported from its module on first use (PEP 562), so a command pays
only for the parts it touches.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rmm_tray.chat.drafts import MessageDraft
    from rmm_tray.chat.history import (
        CHAT_FIELDS,
        ROOT,
        Chat,
        ChatMessage,
        ChatNotFound,
        ChatSummary,
        HistoryBackend,
        HistoryError,
        SearchHit,
        Unsupported,
        active_path,
        chat_from_export,
        export_form,
        hit_for,
        new_chat_id,
        query_terms,
        title_from,
        wanted,
    )
    from rmm_tray.chat.prompt_model import PromptBlock, PromptVariable, VariableSpec
    from rmm_tray.chat.templates import PromptTemplate, TemplateError
    from rmm_tray.engine.types import EngineError
    from rmm_tray.errors import RmmError
    from rmm_tray.home.files import NotRegularFile, file_kind, open_regular
    from rmm_tray.hooks.app_api import PluginApp
    from rmm_tray.hooks.doctor import DoctorCheck
    from rmm_tray.hooks.engines import ChatEngine, EngineUsage
    from rmm_tray.hooks.menu import MenuItem
    from rmm_tray.hooks.specs import hookimpl
    from rmm_tray.models.gguf import quantization_from_name
    from rmm_tray.models.sources import (
        DownloadCancelled,
        LocalModelCandidate,
        ModelSource,
        Progress,
        RemoteModelFile,
        RemotePart,
        RemoteRepo,
        RemoteRepoDetails,
        SourceError,
        link_or_copy,
    )
    from rmm_tray.models.store import SPLIT_NAME

__version__ = "0.1.0"

#: Where each public name lives, by module.
_MODULES: dict[str, tuple[str, ...]] = {
    "rmm_tray.chat.drafts": ("MessageDraft",),
    "rmm_tray.chat.history": (
        "CHAT_FIELDS", "ROOT", "Chat", "ChatMessage", "ChatNotFound", "ChatSummary",
        "HistoryBackend", "HistoryError", "SearchHit", "Unsupported", "active_path",
        "chat_from_export", "export_form", "hit_for", "new_chat_id", "query_terms",
        "title_from", "wanted",
    ),
    "rmm_tray.chat.prompt_model": ("PromptBlock", "PromptVariable", "VariableSpec"),
    "rmm_tray.chat.templates": ("PromptTemplate", "TemplateError"),
    "rmm_tray.errors": ("RmmError",),
    "rmm_tray.home.files": ("NotRegularFile", "file_kind", "open_regular"),
    "rmm_tray.hooks.app_api": ("PluginApp",),
    "rmm_tray.hooks.doctor": ("DoctorCheck",),
    "rmm_tray.engine.types": ("EngineError",),
    "rmm_tray.hooks.engines": ("ChatEngine", "EngineUsage"),
    "rmm_tray.hooks.menu": ("MenuItem",),
    "rmm_tray.hooks.specs": ("hookimpl",),
    "rmm_tray.models.gguf": ("quantization_from_name",),
    "rmm_tray.models.sources": (
        "DownloadCancelled", "LocalModelCandidate", "ModelSource", "Progress",
        "RemoteModelFile", "RemotePart", "RemoteRepo", "RemoteRepoDetails", "SourceError",
        "link_or_copy",
    ),
    "rmm_tray.models.store": ("SPLIT_NAME",),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'rmm_tray' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup is a plain global
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "CHAT_FIELDS",
    "Chat",
    "ChatEngine",
    "ChatMessage",
    "ChatNotFound",
    "ChatSummary",
    "DoctorCheck",
    "DownloadCancelled",
    "EngineError",
    "EngineUsage",
    "HistoryBackend",
    "HistoryError",
    "LocalModelCandidate",
    "MenuItem",
    "MessageDraft",
    "NotRegularFile",
    "ModelSource",
    "PluginApp",
    "Progress",
    "PromptBlock",
    "PromptTemplate",
    "PromptVariable",
    "RemoteModelFile",
    "RemotePart",
    "RemoteRepo",
    "RemoteRepoDetails",
    "RmmError",
    "ROOT",
    "SearchHit",
    "SPLIT_NAME",
    "SourceError",
    "TemplateError",
    "Unsupported",
    "VariableSpec",
    "active_path",
    "chat_from_export",
    "export_form",
    "hit_for",
    "hookimpl",
    "link_or_copy",
    "new_chat_id",
    "quantization_from_name",
    "query_terms",
    "title_from",
    "wanted",
    "__version__",
    "file_kind",
    "open_regular",
]
