"""The default chat history: one JSON Lines file per chat under chats/.

Append-only. Each completed message is one line, fsynced before the call returns;
so is each change of a chat's fields (a "meta" line: rename, pin, trash, the
version chosen). A message line names its parent; lines written before versions
existed have none and follow the message before them.
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
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from rmm_tray import (
    CHAT_FIELDS,
    ROOT,
    Chat,
    ChatMessage,
    ChatNotFound,
    ChatSummary,
    HistoryBackend,
    HistoryError,
    NotRegularFile,
    SearchHit,
    active_path,
    hit_for,
    hookimpl,
    new_chat_id,
    open_regular,
    query_terms,
    title_from,
    wanted,
)

log = logging.getLogger(__name__)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class JsonlHistory(HistoryBackend):
    name = "jsonl"

    def __init__(self, chats_dir: Path) -> None:
        self.dir = chats_dir
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}  # chat id -> fd, opened for appending
        # file name -> (size, mtime_ns, inode) and the chat read then: a list reads
        # only the files that changed since the last one.
        self._seen: dict[str, tuple[tuple[int, int, int], Chat]] = {}
        self._index: dict[str, list[Any]] | None = None  # chats/.index.json, as last read or written
        self._objects: dict[str, ChatSummary] = {}  # its entries as summaries

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

    def create_chat(self, *, title: str, model: str | None, source: str | None = None,
                    system: str | None = None, template: str | None = None,
                    chat_id: str | None = None, created: float | None = None) -> str:
        if chat_id is None:
            chat_id = new_chat_id()
            while self._path(chat_id).exists():
                chat_id = new_chat_id()
        elif self._path(chat_id).exists():
            raise HistoryError(f"a chat with id '{chat_id}' exists already")
        record: dict[str, Any] = {"type": "chat", "id": chat_id, "title": title_from(title),
                                  "created": time.time() if created is None else created,
                                  "model": model}
        for key, value in (("source", source), ("system", system), ("template", template)):
            if value is not None:
                record[key] = value
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
        # No "parent": the message follows the current one (as every line did before
        # versions); null: it starts the chat anew.
        record = {"type": "message", **message.to_dict()}
        if message.parent == ROOT:
            record["parent"] = None
        self._write(chat_id, record, durable=True)

    def append_partial(self, chat_id: str, message_id: str, text: str) -> None:
        if text:
            self._write(chat_id, {"type": "partial", "id": message_id, "text": text}, durable=False)

    def retract_message(self, chat_id: str, message_id: str) -> None:
        self._write(chat_id, {"type": "retract", "id": message_id}, durable=True)

    def update_chat(self, chat_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(CHAT_FIELDS)
        if unknown:
            raise HistoryError(f"a chat has no field {sorted(unknown)[0]!r}")
        if "title" in changes:
            changes["title"] = title_from(changes["title"] or "")
        if "pinned" in changes:
            changes["pinned"] = bool(changes["pinned"])
        if "current" in changes and changes["current"] not in {m.id for m in self.load_chat(chat_id).tree}:
            raise HistoryError(f"chat '{chat_id}' has no message '{changes['current']}'")
        self._meta(chat_id, changes)

    def _meta(self, chat_id: str, changes: dict[str, Any]) -> None:
        if not self._path(chat_id).is_file():
            raise ChatNotFound(f"no chat '{chat_id}'")
        if changes:
            self._write(chat_id, {"type": "meta", **changes}, durable=True)

    def delete_chat(self, chat_id: str) -> None:
        self._meta(chat_id, {"deleted": time.time()})

    def restore_chat(self, chat_id: str) -> None:
        self._meta(chat_id, {"deleted": None})

    def load_chat(self, chat_id: str) -> Chat:
        path = self._path(chat_id)
        if not path.exists():
            raise ChatNotFound(f"no chat '{chat_id}'")
        try:
            return _read_chat(path, chat_id)
        except NotRegularFile as exc:
            raise ChatNotFound(f"chat '{chat_id}' cannot be read: {exc}") from None

    def _files(self) -> Iterator[tuple[Path, list[int]]]:
        """The chat files, each with what tells a changed file: size, mtime, inode."""
        if not self.dir.is_dir():
            return
        for path in self.dir.iterdir():
            # Regular files only (a symlink to one included): a directory, a dangling
            # link or a FIFO named *.jsonl is not a chat, and opening a FIFO would block.
            if not path.name.endswith(".jsonl"):
                continue
            if not path.is_file():
                log.warning("chat file %r skipped: not a regular file", path.name)
                continue
            try:
                st = path.stat()
            except OSError as exc:
                log.warning("chat file %r skipped: %s", path.name, exc)
                continue
            yield path, [st.st_size, st.st_mtime_ns, st.st_ino]

    def _read(self, path: Path) -> Chat | None:
        try:
            return _read_chat(path, path.name[: -len(".jsonl")], quiet=True)
        except (OSError, UnicodeError, ValueError) as exc:  # NotRegularFile is an OSError
            log.warning("chat file %r skipped: %s", path.name, exc)
            return None

    def _all(self) -> list[Chat]:
        """Every chat whole (for search); those unchanged since the last call are not read."""
        out = []
        names = set()
        for path, key in self._files():
            seen = self._seen.get(path.name)
            if seen is not None and list(seen[0]) == key:
                chat: Chat | None = seen[1]
            else:
                chat = self._read(path)
                if chat is None:
                    continue
                self._seen[path.name] = (tuple(key), chat)  # type: ignore[assignment]
            names.add(path.name)
            out.append(chat)
        for gone in set(self._seen) - names:
            del self._seen[gone]
        return out

    def _summaries(self) -> list[ChatSummary]:
        """Every chat's summary. Kept in chats/.index.json, checked against each
        file's size, mtime and inode, so a list reads only the chats that changed
        since any process last listed them (a cache: losing it costs one slow list)."""
        index = self._index if self._index is not None else _read_index(self.dir / INDEX)
        fresh: dict[str, list[Any]] = {}
        objects: dict[str, ChatSummary] = {}
        changed = False
        for path, key in self._files():
            name = path.name
            entry = index.get(name)
            summary = None
            if isinstance(entry, list) and len(entry) == 2 and entry[0] == key:
                summary = self._objects.get(name) or _summary(entry[1])
            if summary is None:
                chat = self._read(path)
                if chat is None:
                    continue
                summary = chat.summary()
                entry = [key, asdict(summary)]
                changed = True
            fresh[name] = entry  # type: ignore[assignment]
            objects[name] = summary
        if changed or len(fresh) != len(index):
            _write_index(self.dir / INDEX, fresh)
        self._index, self._objects = fresh, objects
        return list(objects.values())

    def list_chats(self) -> list[ChatSummary]:
        out = [c for c in self._summaries() if c.deleted is None]
        out.sort(key=lambda c: c.updated, reverse=True)
        return out

    def list_trash(self) -> list[ChatSummary]:
        out = [c for c in self._summaries() if c.deleted is not None]
        out.sort(key=lambda c: c.deleted or 0.0, reverse=True)
        return out

    def search(self, query: str, *, model: str | None = None, since: float | None = None,
               pinned: bool | None = None, limit: int = 50) -> list[SearchHit]:
        # A scan of every chat (those unchanged since the last list are not read again).
        terms = query_terms(query)
        if not terms:
            return []
        hits: list[SearchHit] = []
        chats = sorted((c for c in self._all() if c.deleted is None), key=lambda c: c.updated,
                       reverse=True)
        for chat in chats:
            if not wanted(chat, model=model, since=since, pinned=pinned):
                continue
            hit = hit_for(chat, terms, [(None, chat.title)] +
                          [(m.id, m.content) for m in chat.tree if m.role != "system"])
            if hit:
                hits.append(hit)
                if len(hits) >= limit:
                    break
        return hits

    def purge_chat(self, chat_id: str) -> None:
        path = self._path(chat_id)
        with self._lock:
            fd = self._open.pop(chat_id, None)
            if fd is not None:
                _close_quietly(fd)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ChatNotFound(f"no chat '{chat_id}'") from None


#: Timestamps a chat may carry: from 1970 to the last year datetime can show.
_LATEST = 253402300799.0


def _timestamp(value: Any) -> float | None:
    """A stored time as seconds, or None when it is not one (text, null, NaN, 1e300)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # Compared before float(): a 400-digit integer would overflow it.
    return float(value) if 0 <= value <= _LATEST and math.isfinite(value) else None


#: The summaries cache in chats/ (not a chat: its name does not end in .jsonl).
INDEX = ".index.json"
_SUMMARY_FIELDS = {f.name for f in fields(ChatSummary)}


def _read_index(path: Path) -> dict[str, list[Any]]:
    try:
        with open_regular(path) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (OSError, UnicodeError, ValueError):
        return {}  # none yet, or damaged: rebuilt by this list
    return data if isinstance(data, dict) else {}


def _write_index(path: Path, index: dict[str, list[Any]]) -> None:
    """Best effort, atomic (a reader sees the old index or the new), not fsynced: a cache."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("chat index not written: %s", exc)
        tmp.unlink(missing_ok=True)


def _summary(data: Any) -> ChatSummary | None:
    if not isinstance(data, dict) or set(data) != _SUMMARY_FIELDS:
        return None
    s = ChatSummary(**data)
    ok = (isinstance(s.id, str) and isinstance(s.title, str) and _timestamp(s.created) is not None
          and _timestamp(s.updated) is not None and isinstance(s.messages, int)
          and (s.deleted is None or _timestamp(s.deleted) is not None))
    return s if ok else None


def _ends_torn(fd: int) -> bool:
    """Whether the file ends in a line without its newline."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _read_chat(path: Path, chat_id: str, quiet: bool = False) -> Chat:
    position: dict[str, int] = {}
    retracted: set[str] = set()
    current: str | None = None
    with io.TextIOWrapper(open_regular(path), encoding="utf-8", errors="replace") as fh:
        chat = Chat(id=chat_id, title="", created=os.fstat(fh.fileno()).st_mtime, model=None,
                    messages=[])
        tree = chat.tree
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                kind = record.get("type")
                if kind == "chat":
                    # A field of the wrong kind counts as missing: the chat stays listed.
                    chat.title = title_from(_text(record.get("title")) or "")
                    chat.created = _timestamp(record.get("created")) or chat.created
                    chat.model = _text(record.get("model"))
                    chat.source = _text(record.get("source"))
                    chat.system = _text(record.get("system"))
                    chat.template = _text(record.get("template"))
                elif kind == "message":
                    message = ChatMessage.from_dict(record)
                    if _timestamp(record.get("created")) is None:
                        message.created = chat.created  # not "now": that would reorder the list
                    if message.id in position:  # completes a reply streamed as partials
                        if "parent" not in record:  # the partial knew what it followed
                            message.parent = tree[position[message.id]].parent
                        tree[position[message.id]] = message
                    else:
                        if "parent" not in record:  # follows the current message
                            message.parent = current
                        position[message.id] = len(tree)
                        tree.append(message)
                    current = message.id
                elif kind == "partial":
                    mid, text = record["id"], record["text"]
                    if not isinstance(mid, str) or not isinstance(text, str):
                        raise ValueError("partial needs id and text strings")
                    if mid not in position:
                        position[mid] = len(tree)
                        # A partial line has no time: that of what it follows, not "now"
                        # (which would reorder the list on every read).
                        when = tree[position[current]].created if current in position else chat.created
                        tree.append(ChatMessage("assistant", "", id=mid, interrupted=True,
                                                parent=current, created=when))
                        current = mid
                    message = tree[position[mid]]
                    if message.interrupted:
                        message.content += text
                elif kind == "retract":
                    if not isinstance(record["id"], str):
                        raise ValueError("retract needs an id string")
                    retracted.add(record["id"])
                    while current in retracted:  # the branch shown steps back
                        current = tree[position[current]].parent
                elif kind == "meta":
                    _apply_meta(chat, record)
                    if isinstance(record.get("current"), str) and record["current"] in position:
                        current = record["current"]
                else:
                    raise ValueError(f"unknown record type {kind!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                chat.skipped_lines += 1
                if not quiet:
                    log.warning("%s line %d skipped: %s", path.name, lineno, exc)
    if retracted:
        chat.tree = tree = [m for m in tree if m.id not in retracted]
    chat.current = current if current is not None or not tree else tree[-1].id
    chat.messages = active_path(tree, chat.current)
    if not chat.title:
        chat.title = title_from(next((m.content for m in chat.messages if m.role == "user"), ""))
    return chat


def _apply_meta(chat: Chat, record: dict[str, Any]) -> None:
    """A meta line's fields onto the chat; one of the wrong kind is ignored."""
    for key in ("title", "model", "system", "template", "source"):
        if key in record and (record[key] is None or isinstance(record[key], str)):
            value = record[key]
            setattr(chat, key, title_from(value or "") if key == "title" else value)
    if isinstance(record.get("pinned"), bool):
        chat.pinned = record["pinned"]
    if "deleted" in record:
        chat.deleted = _timestamp(record["deleted"])


@hookimpl
def register_history_backends(register, app):  # type: ignore[no-untyped-def]
    register(JsonlHistory(app.home.chats))
