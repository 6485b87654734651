"""The default chat history: one JSON Lines file per chat under chats/.

Append-only. Each completed message is one line, fsynced before the call returns.
A reply still streaming is written as "partial" lines (flushed, not fsynced), so
a killed process leaves the words already shown; on reading, a reply that never
completed comes back marked interrupted. A line that cannot be read is skipped
with a warning; the rest of the chat stays readable.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import stat
import threading
import time
from pathlib import Path
from typing import Any

from rmm_tray import (
    Chat,
    ChatMessage,
    ChatNotFound,
    ChatSummary,
    HistoryBackend,
    NotRegularFile,
    hookimpl,
    new_chat_id,
    open_regular,
)

log = logging.getLogger(__name__)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SUMMARY_CHARS = 60


class JsonlHistory(HistoryBackend):
    name = "jsonl"

    def __init__(self, chats_dir: Path) -> None:
        self.dir = chats_dir
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}  # chat id -> fd, opened for appending

    def _path(self, chat_id: str) -> Path:
        if not _ID.fullmatch(chat_id):  # "$" would let a trailing newline through
            raise ChatNotFound(f"not a chat id: {chat_id!r}")
        return self.dir / f"{chat_id}.jsonl"

    def _write(self, chat_id: str, record: dict[str, Any], *, durable: bool) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            fd = self._open.get(chat_id)
            if fd is None:
                self.dir.mkdir(parents=True, exist_ok=True)
                # Read-write to check the last byte; O_NONBLOCK: a FIFO in the chat's place
                # opens at once (and is refused) instead of hanging.
                fd = os.open(self._path(chat_id),
                             os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    _close_quietly(fd)
                    raise ChatNotFound(f"chat '{chat_id}' is not a regular file")
                self._open[chat_id] = fd
                if _ends_torn(fd):
                    # Seal the torn line a crash or a full disk left: the torn bytes
                    # stay as one skipped line instead of swallowing this record.
                    data = b"\n" + data
            try:
                view = memoryview(data)
                while view:  # a full disk can take part of a write before refusing
                    view = view[os.write(fd, view):]
                if durable:
                    os.fsync(fd)
            except OSError:
                # The file may now end in a torn line: reopen next time, which checks.
                self._open.pop(chat_id, None)
                _close_quietly(fd)
                raise

    def close(self) -> None:
        with self._lock:
            for fd in self._open.values():
                _close_quietly(fd)
            self._open.clear()

    def create_chat(self, *, title: str, model: str | None) -> str:
        chat_id = new_chat_id()
        while self._path(chat_id).exists():
            chat_id = new_chat_id()
        record = {"type": "chat", "id": chat_id, "title": title[:SUMMARY_CHARS],
                  "created": time.time(), "model": model}
        try:
            self._write(chat_id, record, durable=True)
        except OSError:
            # A chat whose header never landed is no chat: leave no empty file behind.
            with self._lock:
                fd = self._open.pop(chat_id, None)
                if fd is not None:
                    _close_quietly(fd)
            self._path(chat_id).unlink(missing_ok=True)
            raise
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
        try:
            return _read_chat(path, chat_id)
        except NotRegularFile as exc:
            raise ChatNotFound(f"chat '{chat_id}' cannot be read: {exc}") from None

    def list_chats(self) -> list[ChatSummary]:
        if not self.dir.is_dir():
            return []
        out = []
        for path in self.dir.iterdir():
            # Regular files only (a symlink to one included): a directory, a dangling
            # link or a FIFO named *.jsonl is not a chat, and opening a FIFO would block.
            if not path.name.endswith(".jsonl"):
                continue
            if not path.is_file():
                log.warning("chat file %r skipped: not a regular file", path.name)
                continue
            try:
                chat = _read_chat(path, path.name[: -len(".jsonl")], quiet=True)
            except (OSError, UnicodeError, ValueError) as exc:  # NotRegularFile is an OSError
                log.warning("chat file %r skipped: %s", path.name, exc)
                continue
            updated = max([chat.created, *(m.created for m in chat.messages)])
            out.append(ChatSummary(chat.id, chat.title, chat.created, updated,
                                   len(chat.messages), chat.model))
        out.sort(key=lambda c: c.updated, reverse=True)
        return out

    def delete_chat(self, chat_id: str) -> None:
        with self._lock:
            fd = self._open.pop(chat_id, None)
            if fd is not None:
                _close_quietly(fd)
        self._path(chat_id).unlink()


#: Timestamps a chat may carry: from 1970 to the last year datetime can show.
_LATEST = 253402300799.0


def _timestamp(value: Any) -> float | None:
    """A stored time as seconds, or None when it is not one (text, null, NaN, 1e300)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # Compared before float(): a 400-digit integer would overflow it.
    return float(value) if 0 <= value <= _LATEST and math.isfinite(value) else None


def _ends_torn(fd: int) -> bool:
    """Whether the file ends in a line without its newline."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _read_chat(path: Path, chat_id: str, quiet: bool = False) -> Chat:
    position: dict[str, int] = {}
    retracted: set[str] = set()
    with io.TextIOWrapper(open_regular(path), encoding="utf-8", errors="replace") as fh:
        chat = Chat(id=chat_id, title="", created=os.fstat(fh.fileno()).st_mtime, model=None,
                    messages=[])
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                kind = record.get("type")
                if kind == "chat":
                    # A field of the wrong kind counts as missing: the chat stays listed.
                    title, model = record.get("title"), record.get("model")
                    chat.title = title if isinstance(title, str) else ""
                    chat.created = _timestamp(record.get("created")) or chat.created
                    chat.model = model if isinstance(model, str) else None
                elif kind == "message":
                    message = ChatMessage.from_dict(record)
                    if _timestamp(record.get("created")) is None:
                        message.created = chat.created  # not "now": that would reorder the list
                    if message.id in position:  # completes a reply streamed as partials
                        chat.messages[position[message.id]] = message
                    else:
                        position[message.id] = len(chat.messages)
                        chat.messages.append(message)
                elif kind == "partial":
                    mid, text = record["id"], record["text"]
                    if not isinstance(mid, str) or not isinstance(text, str):
                        raise ValueError("partial needs id and text strings")
                    if mid not in position:
                        position[mid] = len(chat.messages)
                        chat.messages.append(ChatMessage("assistant", "", id=mid, interrupted=True))
                    message = chat.messages[position[mid]]
                    if message.interrupted:
                        message.content += text
                elif kind == "retract":
                    if not isinstance(record["id"], str):
                        raise ValueError("retract needs an id string")
                    retracted.add(record["id"])
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
