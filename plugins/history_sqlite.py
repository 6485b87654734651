"""Chat history in one SQLite database (``history.sqlite3`` in the data home).

WAL mode with ``synchronous=FULL``: every call that stores something commits
(and so fsyncs the log) before it returns, a completed message included. A reply
still streaming is stored the same way, marked interrupted until it completes,
so a killed process leaves the words already shown. Several processes (the tray,
``rmm-tray chat``, the API) may write at once: each write is one ``BEGIN
IMMEDIATE`` transaction, and a writer waits up to ``BUSY_MS`` for the others.
An FTS5 index over titles and messages answers search without reading chats.
Choose it with ``[history] backend = "sqlite"``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray import (
    CHAT_FIELDS,
    Chat,
    ChatMessage,
    ChatNotFound,
    ChatSummary,
    HistoryBackend,
    HistoryError,
    SearchHit,
    active_path,
    hit_for,
    hookimpl,
    new_chat_id,
    query_terms,
    title_from,
)

if TYPE_CHECKING:  # imported where a connection opens: a tray on JSONL never loads SQLite
    import sqlite3

BUSY_MS = 30_000
DB_NAME = "history.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    model TEXT, source TEXT, system TEXT, template TEXT,
    pinned INTEGER NOT NULL DEFAULT 0, deleted REAL, current TEXT,
    shown INTEGER NOT NULL DEFAULT 0  -- messages in the branch shown
);
CREATE INDEX IF NOT EXISTS chats_by_time ON chats (deleted, updated DESC);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    id TEXT NOT NULL, parent TEXT, depth INTEGER NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL,
    model TEXT, interrupted INTEGER NOT NULL DEFAULT 0, stats TEXT,
    UNIQUE (chat_id, id)
);
-- One row per message (rowid = messages.seq) and per title (rowid = -chats.rowid).
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5 (
    body, chat_id UNINDEXED, message_id UNINDEXED, tokenize = 'unicode61'
);
"""


def _wal(db: sqlite3.Connection) -> None:
    """WAL mode, waiting for other connections as a write does: switching takes
    an exclusive lock, and SQLite answers "database is locked" at once (its busy
    handler is not asked) while another connection opening the same new file
    holds one."""
    import sqlite3

    deadline = time.monotonic() + BUSY_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.01)


class SqliteHistory(HistoryBackend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None  # opened on first use: registering is free

    # -- the connection ----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            import sqlite3

            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            _wal(db)
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            try:
                # One transaction: two processes starting at once create the tables once.
                db.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
            except BaseException:
                db.close()  # an open transaction ends with the connection
                raise
            self._db = db
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction that takes the write lock at once (no deadlock between
        two readers turning writers), committed when the block ends."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _chat_row(self, db: sqlite3.Connection, chat_id: str) -> sqlite3.Row | tuple[Any, ...]:
        row = db.execute("SELECT rowid, current, shown FROM chats WHERE id = ?", (chat_id,)).fetchone()
        if row is None:
            raise ChatNotFound(f"no chat '{chat_id}'")
        return row

    # -- writing -------------------------------------------------------------------------

    def create_chat(self, *, title: str, model: str | None, source: str | None = None,
                    system: str | None = None, template: str | None = None,
                    chat_id: str | None = None, created: float | None = None) -> str:
        created = time.time() if created is None else created
        title = title_from(title)
        with self._write() as db:
            if chat_id is None:
                chat_id = new_chat_id()
                while db.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchone():
                    chat_id = new_chat_id()
            elif db.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchone():
                raise HistoryError(f"a chat with id '{chat_id}' exists already")
            cur = db.execute(
                "INSERT INTO chats (id, title, created, updated, model, source, system, template)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (chat_id, title, created, created, model, source, system, template))
            self._index_title(db, cur.lastrowid, chat_id, title)
        return chat_id

    def _index_title(self, db: sqlite3.Connection, rowid: int | None, chat_id: str, title: str) -> None:
        db.execute("DELETE FROM search WHERE rowid = ?", (-(rowid or 0),))
        if title:
            db.execute("INSERT INTO search (rowid, body, chat_id, message_id) VALUES (?, ?, ?, '')",
                       (-(rowid or 0), title, chat_id))

    def _index(self, db: sqlite3.Connection, seq: int, chat_id: str, message_id: str,
               role: str, content: str) -> None:
        db.execute("DELETE FROM search WHERE rowid = ?", (seq,))
        if role != "system" and content:
            db.execute("INSERT INTO search (rowid, body, chat_id, message_id) VALUES (?, ?, ?, ?)",
                       (seq, content, chat_id, message_id))

    def _depth(self, db: sqlite3.Connection, chat_id: str, parent: str | None) -> int:
        if parent is None:
            return 1
        row = db.execute("SELECT depth FROM messages WHERE chat_id = ? AND id = ?",
                         (chat_id, parent)).fetchone()
        return (row[0] if row else 0) + 1

    def append_message(self, chat_id: str, message: ChatMessage) -> None:
        stats = json.dumps(message.stats) if message.stats is not None else None
        with self._write() as db:
            _, current, _ = self._chat_row(db, chat_id)
            old = db.execute("SELECT seq, parent, depth FROM messages WHERE chat_id = ? AND id = ?",
                             (chat_id, message.id)).fetchone()
            parent = current if message.parent is None else (message.parent or None)
            if old is not None:  # completes a reply streamed as partials
                seq, depth = old[0], old[2]
                parent = old[1] if message.parent is None else parent
                if parent != old[1]:
                    depth = self._depth(db, chat_id, parent)
                db.execute("UPDATE messages SET parent = ?, depth = ?, role = ?, content = ?,"
                           " created = ?, model = ?, interrupted = ?, stats = ? WHERE seq = ?",
                           (parent, depth, message.role, message.content, message.created,
                            message.model, int(message.interrupted), stats, seq))
            else:
                depth = self._depth(db, chat_id, parent)
                seq = db.execute(
                    "INSERT INTO messages (chat_id, id, parent, depth, role, content, created, model,"
                    " interrupted, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (chat_id, message.id, parent, depth, message.role, message.content,
                     message.created, message.model, int(message.interrupted), stats)).lastrowid
            self._index(db, seq, chat_id, message.id, message.role, message.content)
            db.execute("UPDATE chats SET current = ?, shown = ?, updated = max(updated, ?)"
                       " WHERE id = ?", (message.id, depth, message.created, chat_id))

    def append_partial(self, chat_id: str, message_id: str, text: str) -> None:
        if not text:
            return
        with self._write() as db:
            _, current, shown = self._chat_row(db, chat_id)
            old = db.execute("SELECT seq, interrupted, content FROM messages"
                             " WHERE chat_id = ? AND id = ?", (chat_id, message_id)).fetchone()
            if old is None:
                now = time.time()
                depth = self._depth(db, chat_id, current)
                seq = db.execute(
                    "INSERT INTO messages (chat_id, id, parent, depth, role, content, created,"
                    " interrupted) VALUES (?, ?, ?, ?, 'assistant', ?, ?, 1)",
                    (chat_id, message_id, current, depth, text, now)).lastrowid
                db.execute("UPDATE chats SET current = ?, shown = ?, updated = max(updated, ?)"
                           " WHERE id = ?", (message_id, depth, now, chat_id))
                self._index(db, seq, chat_id, message_id, "assistant", text)
            elif old[1]:  # still streaming: a completed reply is not appended to
                db.execute("UPDATE messages SET content = content || ? WHERE seq = ?", (text, old[0]))
                self._index(db, old[0], chat_id, message_id, "assistant", old[2] + text)

    def update_chat(self, chat_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(CHAT_FIELDS)
        if unknown:
            raise HistoryError(f"a chat has no field {sorted(unknown)[0]!r}")
        with self._write() as db:
            rowid, _, _ = self._chat_row(db, chat_id)
            for key, value in changes.items():
                if key == "title":
                    value = title_from(value or "")
                    self._index_title(db, rowid, chat_id, value)
                elif key == "pinned":
                    value = int(bool(value))
                elif key == "current":
                    row = db.execute("SELECT depth FROM messages WHERE chat_id = ? AND id = ?",
                                     (chat_id, value)).fetchone()
                    if row is None:
                        raise HistoryError(f"chat '{chat_id}' has no message '{value}'")
                    db.execute("UPDATE chats SET shown = ? WHERE id = ?", (row[0], chat_id))
                # The column names come from CHAT_FIELDS, checked above, never from the caller.
                db.execute(f"UPDATE chats SET {key} = ? WHERE id = ?", (value, chat_id))

    def retract_message(self, chat_id: str, message_id: str) -> None:
        with self._write() as db:
            self._chat_row(db, chat_id)
            row = db.execute("SELECT seq, parent FROM messages WHERE chat_id = ? AND id = ?",
                             (chat_id, message_id)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM messages WHERE seq = ?", (row[0],))
            db.execute("DELETE FROM search WHERE rowid = ?", (row[0],))
            current = db.execute("SELECT current FROM chats WHERE id = ?", (chat_id,)).fetchone()[0]
            if current == message_id:
                depth = self._depth(db, chat_id, row[1]) - 1
                db.execute("UPDATE chats SET current = ?, shown = ? WHERE id = ?",
                           (row[1], depth, chat_id))

    def delete_chat(self, chat_id: str) -> None:
        with self._write() as db:
            self._chat_row(db, chat_id)
            db.execute("UPDATE chats SET deleted = ? WHERE id = ?", (time.time(), chat_id))

    def restore_chat(self, chat_id: str) -> None:
        with self._write() as db:
            self._chat_row(db, chat_id)
            db.execute("UPDATE chats SET deleted = NULL WHERE id = ?", (chat_id,))

    def purge_chat(self, chat_id: str) -> None:
        with self._write() as db:
            rowid, _, _ = self._chat_row(db, chat_id)
            db.execute("DELETE FROM search WHERE chat_id = ?", (chat_id,))
            db.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,))
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    # -- reading -------------------------------------------------------------------------

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn().execute(sql, args).fetchall()

    def load_chat(self, chat_id: str) -> Chat:
        with self._lock:
            db = self._conn()
            # One read transaction: a writer in another process cannot slip in between.
            db.execute("BEGIN")
            try:
                row = db.execute("SELECT id, title, created, model, current, pinned, source, system,"
                                 " template, deleted FROM chats WHERE id = ?", (chat_id,)).fetchone()
                rows = db.execute("SELECT id, parent, role, content, created, model, interrupted,"
                                  " stats FROM messages WHERE chat_id = ? ORDER BY seq",
                                  (chat_id,)).fetchall()
            finally:
                db.execute("COMMIT")
        if row is None:
            raise ChatNotFound(f"no chat '{chat_id}'")
        tree = [ChatMessage(role, content, id=mid, created=created, model=model,
                            interrupted=bool(interrupted), stats=_stats(stats), parent=parent)
                for mid, parent, role, content, created, model, interrupted, stats in rows]
        current = row[4] if row[4] is not None or not tree else tree[-1].id
        title = row[1] or title_from(next((m.content for m in tree if m.role == "user"), ""))
        return Chat(id=row[0], title=title, created=row[2], model=row[3],
                    messages=active_path(tree, current), tree=tree, current=current,
                    pinned=bool(row[5]), source=row[6], system=row[7], template=row[8],
                    deleted=row[9])

    def _summaries(self, where: str, order: str, limit: int = -1) -> list[ChatSummary]:
        rows = self._read("SELECT id, title, created, updated, shown, model, pinned, source, deleted"
                          f" FROM chats WHERE {where} ORDER BY {order} LIMIT ?", (limit,))
        return [ChatSummary(i, t, c, u, n, m, bool(p), s, d) for i, t, c, u, n, m, p, s, d in rows]

    def list_chats(self) -> list[ChatSummary]:
        return self._summaries("deleted IS NULL", "updated DESC")

    def list_recent(self, limit: int) -> list[ChatSummary]:
        return self._summaries("deleted IS NULL", "updated DESC", max(0, limit))

    def list_trash(self) -> list[ChatSummary]:
        return self._summaries("deleted IS NOT NULL", "deleted DESC")

    def search(self, query: str, *, model: str | None = None, since: float | None = None,
               pinned: bool | None = None, limit: int = 50) -> list[SearchHit]:
        terms = query_terms(query)
        if not terms:
            return []
        where, args = ["search MATCH ?", "c.deleted IS NULL"], [" ".join(f'"{t}"*' for t in terms)]
        if model is not None:
            where.append("c.model = ?")
            args.append(model)
        if since is not None:
            where.append("c.updated >= ?")
            args.append(since)
        if pinned is not None:
            where.append("c.pinned = ?")
            args.append(int(pinned))
        rows = self._read(
            "SELECT c.id, c.title, c.updated, c.model, c.pinned, s.message_id, s.body"
            " FROM search s JOIN chats c ON c.id = s.chat_id"
            f" WHERE {' AND '.join(where)} ORDER BY c.updated DESC, s.rowid", tuple(args))
        hits: list[SearchHit] = []
        done: set[str] = set()
        for cid, title, updated, mdl, pin, message_id, body in rows:
            if cid in done:
                continue
            # The shared matcher decides and makes the snippet: every backend agrees.
            summary = ChatSummary(cid, title, 0.0, updated, 0, mdl, bool(pin))
            hit = hit_for(summary, terms, [(message_id or None, body)])
            if hit is not None:
                done.add(cid)
                hits.append(hit)
                if len(hits) >= limit:
                    break
        return hits


def _stats(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@hookimpl
def register_history_backends(register, app):  # type: ignore[no-untyped-def]
    register(SqliteHistory(app.home.root / DB_NAME))
