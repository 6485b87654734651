"""A history that keeps one chat in memory and nothing on disk: the turn of a
chat sent with ``--no-save`` still goes through the one Turn code path."""

from __future__ import annotations

import copy
from typing import Any

from rmm_tray.chat.history import (
    Chat,
    ChatMessage,
    ChatNotFound,
    ChatSummary,
    HistoryBackend,
    active_path,
    new_chat_id,
    title_from,
)


class MemoryHistory(HistoryBackend):
    name = "memory"

    def __init__(self) -> None:
        self._chats: dict[str, Chat] = {}

    def create_chat(self, *, title: str, model: str | None, source: str | None = None,
                    system: str | None = None, template: str | None = None,
                    chat_id: str | None = None, created: float | None = None) -> str:
        chat_id = chat_id or new_chat_id()
        chat = Chat(chat_id, title_from(title), 0.0, model, [], source=source, system=system,
                    template=template)
        if created is not None:
            chat.created = created
        self._chats[chat_id] = chat
        return chat_id

    def _get(self, chat_id: str) -> Chat:
        try:
            return self._chats[chat_id]
        except KeyError:
            raise ChatNotFound(f"no chat '{chat_id}'") from None

    def append_message(self, chat_id: str, message: ChatMessage) -> None:
        chat = self._get(chat_id)
        message = copy.copy(message)
        old = next((i for i, m in enumerate(chat.tree) if m.id == message.id), None)
        if message.parent is None:
            message.parent = chat.tree[old].parent if old is not None else chat.current
        message.parent = message.parent or None  # ROOT is stored as no parent
        if old is not None:
            chat.tree[old] = message
        else:
            chat.tree.append(message)
        chat.current = message.id

    def load_chat(self, chat_id: str) -> Chat:
        chat = copy.deepcopy(self._get(chat_id))
        chat.messages = active_path(chat.tree, chat.current)
        return chat

    def list_chats(self) -> list[ChatSummary]:
        return [self.load_chat(i).summary() for i in self._chats]

    def update_chat(self, chat_id: str, **changes: Any) -> None:
        chat = self._get(chat_id)
        for key, value in changes.items():
            setattr(chat, key, value)

