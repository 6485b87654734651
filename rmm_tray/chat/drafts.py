"""The object the message filter hooks (before_send, after_reply) may rewrite."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MessageDraft:
    text: str
    chat_id: str
    role: str
    model: str | None = None
