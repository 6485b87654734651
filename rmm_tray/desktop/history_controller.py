"""What the popup's History view asks of the core: the chats grouped by when,
search as you type, rename, pin, delete with Undo, export, and opening a chat at
a search hit. The work runs on the worker pool; results come back as events."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.chat.history import ChatSummary, SearchHit, newest_leaf, title_from, wanted
from rmm_tray.desktop.work import Background
from rmm_tray.errors import RmmError, describe

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.desktop.chat_controller import ChatController

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]

#: How many chats the view lists before a search narrows them.
PAGE = 200
EXPORT_FORMATS = ("md", "json")


def group_of(ts: float, now: dt.datetime) -> str:
    """Today, Yesterday, Previous 7 days, then the month ("March 2025")."""
    try:
        day = dt.datetime.fromtimestamp(ts).date()
    except (OverflowError, OSError, ValueError):
        return "Older"
    age = (now.date() - day).days
    if age <= 0:
        return "Today"
    if age == 1:
        return "Yesterday"
    if age < 8:
        return "Previous 7 days"
    return day.strftime("%B %Y")


def summary_item(c: ChatSummary, now: dt.datetime) -> dict[str, Any]:
    return {"id": c.id, "title": title_from(c.title or c.id), "model": c.model,
            "updated": c.updated, "pinned": c.pinned, "messages": c.messages,
            "group": "Pinned" if c.pinned else group_of(c.updated, now)}


def hit_item(h: SearchHit, now: dt.datetime) -> dict[str, Any]:
    return {"id": h.chat_id, "title": title_from(h.title or h.chat_id), "model": h.model,
            "updated": h.updated, "pinned": h.pinned, "message_id": h.message_id,
            "snippet": h.snippet, "highlights": [list(span) for span in h.highlights],
            "group": "Pinned" if h.pinned else group_of(h.updated, now)}


class HistoryController:
    def __init__(self, app: "App", emit: Emit, chat: "ChatController",
                 work: Background | None = None) -> None:
        self.app = app
        self.emit = emit
        self.chat = chat
        self.work = work or Background()
        self._latest = 0  # the newest search asked for: an older one's results are dropped
        self._lock = threading.Lock()

    def _spawn(self, name: str, fn: Callable[..., None], *args: Any) -> "Future[Any]":
        return self.work.run(name, fn, *args, on_error=self._failed)

    def _failed(self, line: str) -> None:
        self.emit({"type": "history.error", "message": line})

    # -- the list and search -------------------------------------------------------

    def open(self) -> "Future[Any]":
        return self._spawn("history", self._search, "", {}, self._latest)

    def search(self, query: str, seq: str, filters: dict[str, Any]) -> "Future[Any]":
        """A keystroke in the search box (or a filter changed): ``seq`` orders
        them, so a slow early search never replaces a later one's results.
        ``filters``: ``model`` (a name or ""), ``days`` (updated within), ``pinned``."""
        try:
            n = int(seq)
        except ValueError:
            raise RmmError(f"history search: seq {seq!r} is not a number") from None
        with self._lock:
            self._latest = max(self._latest, n)
        return self._spawn("history-search", self._search, query, filters, n)

    def _search(self, query: str, filters: dict[str, Any], n: int) -> None:
        model = filters.get("model") or None
        days = filters.get("days")
        since = (dt.datetime.now() - dt.timedelta(days=float(days))).timestamp() \
            if isinstance(days, (int, float)) and not isinstance(days, bool) and days > 0 else None
        pinned = True if filters.get("pinned") is True else None
        now = dt.datetime.now()
        if query.strip():
            hits = self.app.history.search(query, model=model, since=since, pinned=pinned, limit=PAGE)
            items = [hit_item(h, now) for h in hits]
        else:
            chats = [c for c in self.app.history.list_recent(PAGE)
                     if wanted(c, model=model, since=since, pinned=pinned)]
            items = [summary_item(c, now) for c in chats]
        if n != self._latest:
            return
        items.sort(key=lambda i: not i["pinned"])  # pinned first, each part newest first
        self.emit({"type": "history.list", "query": query, "seq": n, "items": items})

    # -- actions on a chat ---------------------------------------------------------

    def open_at(self, chat_id: str, message_id: str) -> "Future[Any]":
        return self._spawn("history-open", self._open_at, chat_id, message_id)

    def _open_at(self, chat_id: str, message_id: str) -> None:
        history = self.app.history
        chat = history.load_chat(chat_id)
        if message_id and message_id not in {m.id for m in chat.messages} \
                and message_id in {m.id for m in chat.tree}:
            # The hit is in another version: show the branch it is on.
            history.update_chat(chat_id, current=newest_leaf(chat, message_id))
        self.chat.open_chat(chat_id)
        self.emit({"type": "history.opened", "chat_id": chat_id, "message_id": message_id or None})

    def rename(self, chat_id: str, title: str) -> "Future[Any]":
        if not title_from(title):
            raise RmmError("a title needs some text")
        return self._spawn("history-rename", self._change, chat_id, {"title": title})

    def pin(self, chat_id: str, on: str) -> "Future[Any]":
        return self._spawn("history-pin", self._change, chat_id, {"pinned": on == "1"})

    def _change(self, chat_id: str, changes: dict[str, Any]) -> None:
        self.app.history.update_chat(chat_id, **changes)
        self.emit({"type": "history.changed", "chat_id": chat_id})

    def delete(self, chat_id: str) -> "Future[Any]":
        """To the trash: Undo (``restore``) brings it back; so does `chats restore`."""
        return self._spawn("history-delete", self._delete, chat_id)

    def _delete(self, chat_id: str) -> None:
        chat = self.app.history.load_chat(chat_id)
        self.app.history.delete_chat(chat_id)
        if self.chat.chat_id == chat_id:
            self.chat.new_chat()
        self.emit({"type": "history.deleted", "chat_id": chat_id, "title": title_from(chat.title)})

    def restore(self, chat_id: str) -> "Future[Any]":
        return self._spawn("history-restore", self._restore, chat_id)

    def _restore(self, chat_id: str) -> None:
        self.app.history.restore_chat(chat_id)
        self.emit({"type": "history.changed", "chat_id": chat_id})

    def export(self, chat_id: str, fmt: str) -> "Future[Any]":
        """Into the exports folder (the page's call, where there is no save dialog)."""
        return self.export_to(chat_id, fmt, None)

    def export_to(self, chat_id: str, fmt: str, path: Path | None) -> "Future[Any]":
        """To ``path``, which only the popup process's save dialog sends (never the
        page, which could name any file); None: into the exports folder."""
        if fmt not in EXPORT_FORMATS:
            raise RmmError(f"export as {fmt!r}: Markdown (md) or JSON (json)")
        if path is not None and not path.is_absolute():
            raise RmmError(f"export to {path}: not a full path")
        return self._spawn("history-export", self._export, chat_id, fmt, path)

    def _export(self, chat_id: str, fmt: str, path: Path | None = None) -> None:
        from rmm_tray.chat.history_io import write_export

        folder = self.app.home.root / "exports"
        try:
            path = write_export(self.app.history, chat_id, fmt, folder, path)
        except OSError as exc:
            raise RmmError(f"could not export to {path or folder}: {describe(exc)}") from None
        self.emit({"type": "history.exported", "chat_id": chat_id, "path": str(path)})
