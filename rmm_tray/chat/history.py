"""What a chat-history backend offers. The first-party JSONL backend implements it;
plugins can register others through ``register_history_backends``."""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from rmm_tray.errors import RmmError


class ChatNotFound(RmmError, KeyError):
    """No chat has that id. A KeyError, as the backend contract has always said."""

    def __str__(self) -> str:  # KeyError's own adds quotes around the message
        return str(self.args[0]) if self.args else "no such chat"


def new_id() -> str:
    return os.urandom(6).hex()


def new_chat_id() -> str:
    # Sortable by time and readable in a file manager.
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


@dataclass
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str
    id: str = field(default_factory=new_id)
    created: float = field(default_factory=time.time)
    model: str | None = None
    #: The reply stopped before it was complete (cancelled, crashed, killed).
    interrupted: bool = False
    stats: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChatMessage":
        """A stored message. ``role`` and ``content`` must be strings (ValueError
        otherwise); any other field of the wrong kind (a NaN or absurd time
        included) counts as missing, so one odd record never breaks a chat."""
        if not isinstance(data, dict):
            raise ValueError("a message is a JSON object")
        role, content = data.get("role"), data.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise ValueError("message needs role and content strings")
        known: dict[str, Any] = {"role": role, "content": content}
        if isinstance(data.get("id"), str) and data["id"]:
            known["id"] = data["id"]
        created = data.get("created")
        if _is_time(created):
            known["created"] = float(created)
        if isinstance(data.get("model"), str):
            known["model"] = data["model"]
        if isinstance(data.get("interrupted"), bool):
            known["interrupted"] = data["interrupted"]
        if isinstance(data.get("stats"), dict):
            known["stats"] = data["stats"]
        return cls(**known)


#: The latest time a record may carry: the end of year 9999, as far as datetime goes.
LATEST_TIME = 253402300799.0


def _is_time(value: Any) -> bool:
    """Seconds since 1970 that a clock could show (not text, null, NaN, inf or 1e300)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    # Compared before any float(): a 400-digit integer would overflow it.
    return 0 <= value <= LATEST_TIME and math.isfinite(value)


@dataclass
class ChatSummary:
    id: str
    title: str
    created: float
    updated: float
    messages: int
    model: str | None = None


@dataclass
class Chat:
    id: str
    title: str
    created: float
    model: str | None
    messages: list[ChatMessage]
    #: Lines that could not be read (skipped, with a warning in the log).
    skipped_lines: int = 0


class HistoryBackend(ABC):
    """Stores chats. Every call may be made from any thread, one at a time."""

    #: Name chosen in ``config.toml`` under ``[history] backend``.
    name: str = ""

    @abstractmethod
    def create_chat(self, *, title: str, model: str | None) -> str:
        """Start a chat and return its id."""

    @abstractmethod
    def append_message(self, chat_id: str, message: ChatMessage) -> None:
        """Store a completed message durably before returning."""

    def append_partial(self, chat_id: str, message_id: str, text: str) -> None:
        """Store a piece of a reply still streaming, so a crash keeps what was said.
        ``append_message`` with the same id completes it. Optional."""

    @abstractmethod
    def load_chat(self, chat_id: str) -> Chat:
        """Return the chat; raise ``ChatNotFound`` (a KeyError) when there is none."""

    @abstractmethod
    def list_chats(self) -> list[ChatSummary]:
        """Newest first."""

    def retract_message(self, chat_id: str, message_id: str) -> None:
        """Take a message back (regenerate, edit and resend). Optional."""
        raise NotImplementedError

    def delete_chat(self, chat_id: str) -> None:
        raise NotImplementedError
