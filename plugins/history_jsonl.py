"""The default chat history: one JSON Lines file per chat under chats/.

Append-only. Each completed message is one line, fsynced before the call returns.
A reply still streaming is written as "partial" lines (flushed, not fsynced), so
a killed process leaves the words already shown; on reading, a reply that never
completed comes back marked interrupted. A line that cannot be read is skipped
with a warning; the rest of the chat stays readable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import IO, Any

from rmm_tray import Chat, ChatMessage, ChatNotFound, ChatSummary, HistoryBackend, hookimpl, new_chat_id

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SUMMARY_CHARS = 60


class JsonlHistory(HistoryBackend):
    name = "jsonl"

    def __init__(self, chats_dir: Path) -> None:
        self.dir = chats_dir
        self._lock = threading.Lock()
        self._open: dict[str, IO[str]] = {}

    def _path(self, chat_id: str) -> Path:
        if not _ID.match(chat_id):
            raise ChatNotFound(f"not a chat id: {chat_id!r}")
        return self.dir / f"{chat_id}.jsonl"

    def _write(self, chat_id: str, record: dict[str, Any], *, durable: bool) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            fh = self._open.get(chat_id)
            if fh is None:
                self.dir.mkdir(parents=True, exist_ok=True)
                fh = self._path(chat_id).open("a", encoding="utf-8")
                self._open[chat_id] = fh
            fh.write(line)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())

    def close(self) -> None:
        with self._lock:
            for fh in self._open.values():
                fh.close()
            self._open.clear()

    def create_chat(self, *, title: str, model: str | None) -> str:
        chat_id = new_chat_id()
        while self._path(chat_id).exists():
            chat_id = new_chat_id()
        record = {"type": "chat", "id": chat_id, "title": title[:SUMMARY_CHARS],
                  "created": time.time(), "model": model}
        self._write(chat_id, record, durable=True)
        return chat_id

    def append_message(self, chat_id: str, message: ChatMessage) -> None:
        self._write(chat_id, {"type": "message", **message.to_dict()}, durable=True)

    def append_partial(self, chat_id: str, message_id: str, text: str) -> None:
        if text:
            self._write(chat_id, {"type": "partial", "id": message_id, "text": text}, durable=False)

    def retract_message(self, chat_id: str, message_id: str) -> None:
        self._write(chat_id, {"type": "retract", "id": message_id}, durable=True)

    def load_chat(self, chat_id: str) -> Chat:
        path = self._path(chat_id)
        if not path.exists():
            raise ChatNotFound(f"no chat '{chat_id}'")
        return _read_chat(path, chat_id)

    def list_chats(self) -> list[ChatSummary]:
        if not self.dir.is_dir():
            return []
        out = []
        for path in self.dir.glob("*.jsonl"):
            chat = _read_chat(path, path.stem, quiet=True)
            updated = max([chat.created, *(m.created for m in chat.messages)])
            out.append(ChatSummary(chat.id, chat.title, chat.created, updated,
                                   len(chat.messages), chat.model))
        out.sort(key=lambda c: c.updated, reverse=True)
        return out

    def delete_chat(self, chat_id: str) -> None:
        with self._lock:
            fh = self._open.pop(chat_id, None)
            if fh:
                fh.close()
        self._path(chat_id).unlink()


def _read_chat(path: Path, chat_id: str, quiet: bool = False) -> Chat:
    chat = Chat(id=chat_id, title="", created=path.stat().st_mtime, model=None, messages=[])
    position: dict[str, int] = {}
    retracted: set[str] = set()
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                kind = record.get("type")
                if kind == "chat":
                    chat.title = str(record.get("title") or "")
                    chat.created = float(record.get("created") or chat.created)
                    chat.model = record.get("model")
                elif kind == "message":
                    message = ChatMessage.from_dict(record)
                    if message.id in position:  # completes a reply streamed as partials
                        chat.messages[position[message.id]] = message
                    else:
                        position[message.id] = len(chat.messages)
                        chat.messages.append(message)
                elif kind == "partial":
                    mid, text = str(record["id"]), str(record["text"])
                    if mid not in position:
                        position[mid] = len(chat.messages)
                        chat.messages.append(ChatMessage("assistant", "", id=mid, interrupted=True))
                    message = chat.messages[position[mid]]
                    if message.interrupted:
                        message.content += text
                elif kind == "retract":
                    retracted.add(str(record["id"]))
                else:
                    raise ValueError(f"unknown record type {kind!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                chat.skipped_lines += 1
                if not quiet:
                    log.warning("%s line %d skipped: %s", path.name, lineno, exc)
    if retracted:
        chat.messages = [m for m in chat.messages if m.id not in retracted]
    if not chat.title:
        chat.title = next((m.content for m in chat.messages if m.role == "user"), "")[:SUMMARY_CHARS]
    return chat


@hookimpl
def register_history_backends(register, app):  # type: ignore[no-untyped-def]
    register(JsonlHistory(app.home.chats))
