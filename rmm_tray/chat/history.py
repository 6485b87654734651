"""What a chat-history backend offers. The first-party JSONL and SQLite backends
implement it; plugins can register others through ``register_history_backends``.

A chat is a tree: each message names its ``parent`` (the message it answers or
follows), so a regenerated reply or an edited question is a sibling of the one
it replaces and nothing is lost. ``Chat.messages`` is the branch shown (the root
down to ``Chat.current``); ``Chat.tree`` holds every message ever stored.
Every method is documented, with what must be durable when it returns, in
docs/plugins.md; ``rmm_tray.testing.history_contract`` checks a backend against it.
"""

from __future__ import annotations

import math
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from rmm_tray.errors import RmmError


class ChatNotFound(RmmError, KeyError):
    """No chat has that id. A KeyError, as the backend contract has always said."""

    def __str__(self) -> str:  # KeyError's own adds quotes around the message
        return str(self.args[0]) if self.args else "no such chat"


class HistoryError(RmmError):
    """A history request that cannot be done: a bad export file, an unknown field."""


class Unsupported(HistoryError, NotImplementedError):
    """The backend in use does not offer that (a plugin written for an older contract)."""


def new_id() -> str:
    return os.urandom(6).hex()


def new_chat_id() -> str:
    # Sortable by time and readable in a file manager.
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


#: ``ChatMessage.parent`` for a message that starts a chat anew (an edit of the first).
ROOT = ""

#: Where a chat was started: lists and the tray's Recent chats filter on it.
SOURCES = ("popup", "cli", "api", "import")
TITLE_CHARS = 60


def title_from(text: str, limit: int = TITLE_CHARS) -> str:
    """A single-line title: whitespace (newlines included) collapsed, trimmed,
    cut at ``limit`` characters with an ellipsis."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


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
    #: The message this one follows. Appended with None, it follows the chat's
    #: current message; with ``ROOT``, it starts the chat anew (a version of the
    #: first message). Loaded, the first message of a branch has None.
    parent: str | None = None

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
        for key in ("model", "parent"):
            if isinstance(data.get(key), str) and data[key]:
                known[key] = data[key]
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
    pinned: bool = False
    source: str | None = None
    #: When it went to the trash; None for a chat that is not there.
    deleted: float | None = None


@dataclass
class Chat:
    id: str
    title: str
    created: float
    model: str | None
    #: The branch shown: the first message down to ``current``.
    messages: list[ChatMessage]
    #: Lines that could not be read (skipped, with a warning in the log).
    skipped_lines: int = 0
    #: Every message stored, versions and other branches included, oldest first.
    tree: list[ChatMessage] = field(default_factory=list)
    #: The last message of the branch shown.
    current: str | None = None
    pinned: bool = False
    source: str | None = None
    system: str | None = None
    template: str | None = None
    deleted: float | None = None

    @property
    def updated(self) -> float:
        return max([self.created, *(m.created for m in self.tree or self.messages)])

    def summary(self) -> ChatSummary:
        return ChatSummary(self.id, self.title, self.created, self.updated, len(self.messages),
                           self.model, self.pinned, self.source, self.deleted)


@dataclass
class SearchHit:
    chat_id: str
    title: str
    updated: float
    model: str | None
    #: The message that matched; None when the title did.
    message_id: str | None
    #: A single line of the matching text around the hit.
    snippet: str
    #: (start, end) character ranges of ``snippet`` that match the query.
    highlights: list[tuple[int, int]]
    pinned: bool = False


#: What ``update_chat`` may change.
CHAT_FIELDS = ("title", "pinned", "model", "system", "template", "source", "current")


class HistoryBackend(ABC):
    """Stores chats. Every call may be made from any thread, one at a time; a
    backend that other processes may write at the same time must stay whole.
    The four abstract methods make a working backend; the others have defaults
    (search and export built on ``load_chat``) or raise ``Unsupported`` (a
    NotImplementedError and a HistoryError), which the contract suite reports."""

    #: Name chosen in ``config.toml`` under ``[history] backend``.
    name: str = ""

    @abstractmethod
    def create_chat(self, *, title: str, model: str | None, source: str | None = None,
                    system: str | None = None, template: str | None = None,
                    chat_id: str | None = None, created: float | None = None) -> str:
        """Start a chat durably and return its id. ``chat_id``/``created`` are given
        only by an import, which keeps them."""

    @abstractmethod
    def append_message(self, chat_id: str, message: ChatMessage) -> None:
        """Store a completed message durably before returning; it becomes current.
        The same id again completes a reply stored with ``append_partial``."""

    def append_partial(self, chat_id: str, message_id: str, text: str) -> None:
        """Store a piece of a reply still streaming, so a crash keeps what was said.
        The reply follows the current message. Optional."""

    @abstractmethod
    def load_chat(self, chat_id: str) -> Chat:
        """Return the chat; raise ``ChatNotFound`` (a KeyError) when there is none."""

    @abstractmethod
    def list_chats(self) -> list[ChatSummary]:
        """Chats not in the trash, newest first."""

    def list_recent(self, limit: int) -> list[ChatSummary]:
        """The first ``limit`` of ``list_chats()``: a first page, which a backend with
        an index answers without reading every chat."""
        return self.list_chats()[:limit]

    def list_trash(self) -> list[ChatSummary]:
        """Chats in the trash, most recently deleted first."""
        raise self._unsupported("list the trash")

    def update_chat(self, chat_id: str, **changes: Any) -> None:
        """Change the chat's fields named in ``CHAT_FIELDS``, durably."""
        raise self._unsupported("change a chat")

    def retract_message(self, chat_id: str, message_id: str) -> None:
        """Take a message back for good. Optional: versions keep it instead."""
        raise self._unsupported("take a message back")

    def delete_chat(self, chat_id: str) -> None:
        """Move the chat to the trash: out of lists and search, back with ``restore_chat``."""
        raise self._unsupported("move a chat to the trash")

    def restore_chat(self, chat_id: str) -> None:
        """Bring a chat back from the trash."""
        raise self._unsupported("restore a chat")

    def purge_chat(self, chat_id: str) -> None:
        """Remove the chat for good."""
        raise self._unsupported("remove a chat")

    def search(self, query: str, *, model: str | None = None, since: float | None = None,
               pinned: bool | None = None, limit: int = 50) -> list[SearchHit]:
        """Chats whose title or one message has every word of ``query`` (as the
        start of a word, any case), newest first. This default reads every chat."""
        return scan_search(self, query, model=model, since=since, pinned=pinned, limit=limit)

    def export_chat(self, chat_id: str) -> dict[str, Any]:
        """The chat in the common JSON form (``export_form``)."""
        return export_form(self.load_chat(chat_id))

    def import_chat(self, data: dict[str, Any]) -> str:
        """Store a chat given in the common JSON form, keeping its id, times and
        every message; HistoryError if the form is wrong or the id is taken.
        (Whether a chat is in the trash is not part of the form.)"""
        chat = chat_from_export(data)
        try:
            self.load_chat(chat.id)
        except KeyError:
            pass
        else:
            raise HistoryError(f"a chat with id '{chat.id}' exists already")
        self.create_chat(title=chat.title, model=chat.model, source=chat.source,
                         system=chat.system, template=chat.template, chat_id=chat.id,
                         created=chat.created)
        for m in chat.tree:
            if m.parent is None:
                m.parent = ROOT
            self.append_message(chat.id, m)
            if m.parent == ROOT:
                m.parent = None
        changes: dict[str, Any] = {}
        if chat.pinned:
            changes["pinned"] = True
        if chat.current and chat.tree and chat.current != chat.tree[-1].id:
            changes["current"] = chat.current
        if changes:
            self.update_chat(chat.id, **changes)
        return chat.id

    def close(self) -> None:
        """The app exits: release files and connections."""

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"the '{self.name or type(self).__name__}' history backend cannot {what}")


def recent_chats(backend: HistoryBackend, limit: int) -> list[ChatSummary]:
    """The popup's chats, newest first: what Recent chats shows in the tray and the
    popup. A one-shot ``rmm-tray chat`` (source "cli") or an API call does not push
    them out; chats from before sources were kept count as the popup's."""
    out = [c for c in backend.list_chats() if c.source in (None, "popup")]
    return out[:limit]


# -- the branch shown ----------------------------------------------------------------

def active_path(tree: list[ChatMessage], current: str | None) -> list[ChatMessage]:
    """The messages from the first down to ``current`` (the last stored when
    None or unknown). A parent that is missing ends the walk: what is there shows."""
    if not tree:
        return []
    by_id = {m.id: m for m in tree}
    node = by_id.get(current or "") or tree[-1]
    path: list[ChatMessage] = []
    seen: set[str] = set()
    while node is not None and node.id not in seen:
        seen.add(node.id)
        path.append(node)
        node = by_id.get(node.parent) if node.parent else None
    path.reverse()
    return path


def versions(chat: Chat, message_id: str) -> list[ChatMessage]:
    """The message and its siblings of the same role (its versions), oldest first."""
    by_id = {m.id: m for m in chat.tree}
    me = by_id.get(message_id)
    if me is None:
        return []
    return [m for m in chat.tree if m.parent == me.parent and m.role == me.role]


def newest_leaf(chat: Chat, message_id: str) -> str:
    """The last message of the newest branch below ``message_id``: choosing a
    version shows the conversation that went on from it."""
    children: dict[str, list[ChatMessage]] = {}
    for m in chat.tree:
        if m.parent:
            children.setdefault(m.parent, []).append(m)
    node, seen = message_id, {message_id}
    while children.get(node):
        node = children[node][-1].id
        if node in seen:
            break
        seen.add(node)
    return node


# -- search --------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
SNIPPET_BEFORE, SNIPPET_CHARS = 30, 120


def query_terms(query: str) -> list[str]:
    """The words of a query, case-folded: what every backend matches."""
    return [w.casefold() for w in _WORD.findall(query)]


def match_spans(text: str, terms: list[str]) -> list[tuple[int, int]] | None:
    """The ranges of ``text`` where words start with a term, or None unless every
    term starts some word."""
    if not terms:
        return None
    spans: list[tuple[int, int]] = []
    found: set[str] = set()
    for w in _WORD.finditer(text):
        word = w.group().casefold()
        best = max((t for t in terms if word.startswith(t)), key=len, default=None)
        if best is not None:
            found.add(best)
            # Case-folding can change the length (ß -> ss): highlight the whole word then.
            length = len(best) if w.group()[: len(best)].casefold() == best else len(w.group())
            spans.append((w.start(), w.start() + length))
    return spans if found == set(terms) else None


def make_snippet(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """One line of ``text`` around its first match, with the matches inside it."""
    start = max(0, spans[0][0] - SNIPPET_BEFORE) if spans else 0
    end = min(len(text), start + SNIPPET_CHARS)
    piece = text[start:end]
    # Newlines become spaces one for one, so the ranges still fit.
    line = re.sub(r"\s", " ", piece)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - start
    inside = [(a + shift, b + shift) for a, b in spans if a >= start and b <= end]
    return prefix + line + suffix, inside


def hit_for(chat: Chat | ChatSummary, terms: list[str], texts: list[tuple[str | None, str]]) \
        -> SearchHit | None:
    """The first of ``texts`` ((message id or None for the title, text)) that
    matches every term, as a hit; None when none does."""
    for message_id, text in texts:
        folded = text.casefold()
        if not all(t in folded for t in terms):
            continue  # the cheap test first: most texts lack a term anywhere
        spans = match_spans(text, terms)
        if spans:
            snippet, marks = make_snippet(text, spans)
            return SearchHit(chat.id, chat.title, chat.updated, chat.model, message_id,
                             snippet, marks, chat.pinned)
    return None


def scan_search(backend: HistoryBackend, query: str, *, model: str | None = None,
                since: float | None = None, pinned: bool | None = None,
                limit: int = 50) -> list[SearchHit]:
    """Search by reading every chat: the default any backend gets."""
    terms = query_terms(query)
    if not terms:
        return []
    hits: list[SearchHit] = []
    for summary in backend.list_chats():
        if not wanted(summary, model=model, since=since, pinned=pinned):
            continue
        try:
            chat = backend.load_chat(summary.id)
        except KeyError:
            continue  # deleted meanwhile
        hit = hit_for(chat, terms, [(None, chat.title)] +
                      [(m.id, m.content) for m in chat.tree if m.role != "system"])
        if hit:
            hits.append(hit)
            if len(hits) >= limit:
                break
    return hits


def wanted(c: ChatSummary | Chat, *, model: str | None, since: float | None,
           pinned: bool | None) -> bool:
    return ((model is None or c.model == model) and (since is None or c.updated >= since)
            and (pinned is None or c.pinned == pinned))


# -- the common JSON form ------------------------------------------------------------

EXPORT_FORMAT = "rmm-chat"
EXPORT_VERSION = 1


def export_form(chat: Chat) -> dict[str, Any]:
    """A chat as plain JSON values, every message of every branch included, in
    the same key order from every backend (so two exports compare byte for byte)."""
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION,
        "id": chat.id, "title": chat.title, "created": chat.created, "model": chat.model,
        "source": chat.source, "system": chat.system, "template": chat.template,
        "pinned": chat.pinned, "current": chat.current,
        "messages": [{"id": m.id, "parent": m.parent, "role": m.role, "content": m.content,
                      "created": m.created, "model": m.model, "interrupted": m.interrupted,
                      "stats": m.stats} for m in chat.tree],
    }


_CHAT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def chat_from_export(data: Any) -> Chat:
    """Check one chat in the common JSON form; HistoryError saying what is wrong."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise HistoryError("not an rmm-tray chat export (no \"format\": \"rmm-chat\")")
    if data.get("version") != EXPORT_VERSION:
        raise HistoryError(f"chat export version {data.get('version')!r} is not one this "
                           f"version reads ({EXPORT_VERSION})")
    chat_id = data.get("id")
    if not isinstance(chat_id, str) or not _CHAT_ID.fullmatch(chat_id):
        raise HistoryError(f"not a chat id: {chat_id!r}")

    def text(key: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise HistoryError(f"chat {chat_id}: {key} must be text or null")
        return value

    raw = data.get("messages")
    if not isinstance(raw, list):
        raise HistoryError(f"chat {chat_id}: messages must be a list")
    messages: list[ChatMessage] = []
    ids: set[str] = set()
    for i, item in enumerate(raw):
        try:
            m = ChatMessage.from_dict(item)
        except ValueError as exc:
            raise HistoryError(f"chat {chat_id}: message {i + 1}: {exc}") from None
        if not isinstance(item.get("id"), str) or m.id in ids:
            raise HistoryError(f"chat {chat_id}: message {i + 1} needs an id of its own")
        if m.parent is not None and m.parent not in ids:
            raise HistoryError(f"chat {chat_id}: message {i + 1} follows an unknown message")
        ids.add(m.id)
        messages.append(m)
    created = data.get("created")
    current = text("current")
    return Chat(
        id=chat_id, title=title_from(text("title") or ""),
        created=float(created) if _is_time(created) else time.time(),
        model=text("model"), messages=active_path(messages, current), tree=messages,
        current=current if current in ids else None, pinned=data.get("pinned") is True,
        source=text("source"), system=text("system"), template=text("template"))
