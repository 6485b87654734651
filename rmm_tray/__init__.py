"""RunMyModel tray: a local llama.cpp assistant in the system tray.

This module is the public plugin API. Plugins import only from here:

    from rmm_tray import hookimpl, PromptTemplate, ModelSource, HistoryBackend

It stays import-light (no llama_cpp, no GUI toolkits) so that the CLI starts fast.
"""

from rmm_tray.history_api import Chat, ChatMessage, ChatSummary, HistoryBackend, new_chat_id
from rmm_tray.hookspecs import hookimpl
from rmm_tray.messages import MessageDraft
from rmm_tray.sources_api import (
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
from rmm_tray.templates import PromptTemplate, TemplateError
from rmm_tray.tray_api import MenuItem

__version__ = "0.1.0"

__all__ = [
    "Chat",
    "ChatMessage",
    "ChatSummary",
    "DownloadCancelled",
    "HistoryBackend",
    "LocalModelCandidate",
    "MenuItem",
    "MessageDraft",
    "ModelSource",
    "Progress",
    "PromptTemplate",
    "RemoteModelFile",
    "RemotePart",
    "RemoteRepo",
    "RemoteRepoDetails",
    "SourceError",
    "TemplateError",
    "hookimpl",
    "link_or_copy",
    "new_chat_id",
    "__version__",
]
