"""Chats in and out: Markdown and JSON exports, imports of our own exports and of
a ChatGPT ``conversations.json``, and the copy of every chat to another backend.
One implementation, called by ``rmm-tray chats`` and the popup."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmm_tray.chat.history import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    Chat,
    HistoryBackend,
    HistoryError,
    Unsupported,
    chat_from_export,
    title_from,
)

log = logging.getLogger(__name__)

FORMATS = ("md", "json")


def dump(form: Any) -> str:
    """The bytes of an export: sorted keys, text unescaped, one key per line."""
    return json.dumps(form, ensure_ascii=False, sort_keys=True, indent=1)


def _when(ts: float) -> str:
    try:
        return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "?"


def to_markdown(chat: Chat) -> str:
    """The branch shown as Markdown: a heading, then each message under its role."""
    lines = [f"# {chat.title or chat.id}", ""]
    facts = [f"Chat {chat.id}", _when(chat.created)]
    if chat.model:
        facts.append(f"model {chat.model}")
    lines += ["*" + " · ".join(facts) + "*", ""]
    names = {"user": "You", "assistant": "Assistant", "system": "System prompt"}
    for m in chat.messages:
        mark = " (interrupted)" if m.interrupted else ""
        lines += [f"## {names.get(m.role, m.role)}{mark}", "", m.content, ""]
    return "\n".join(lines)


def export_text(backend: HistoryBackend, chat_ids: list[str], fmt: str) -> str:
    """The chats as one document: Markdown one after another, or JSON (one chat
    object, or a list of them for several)."""
    if fmt not in FORMATS:
        raise HistoryError(f"export format {fmt!r}: use md or json")
    if fmt == "md":
        return "\n---\n\n".join(to_markdown(backend.load_chat(i)) for i in chat_ids)
    forms = [backend.export_chat(i) for i in chat_ids]
    return dump(forms[0] if len(forms) == 1 else forms) + "\n"


def export_name(chat: Chat, fmt: str) -> str:
    """A file name for one chat's export: its date and title, safe on any disk."""
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in chat.title)[:40].strip("-")
    return f"{chat.id[:15]}-{stem or 'chat'}.{fmt}"


def write_export(backend: HistoryBackend, chat_id: str, fmt: str, folder: Path,
                 path: Path | None = None) -> Path:
    """One chat exported into ``folder`` (made if needed); an existing file is
    never overwritten: the name gets a number. With ``path`` (what the person
    chose in a save dialog, which asked before replacing a file), exactly there."""
    from rmm_tray.home.atomic import atomic_write_text

    if path is not None:
        backend.load_chat(chat_id)  # a chat gone is ChatNotFound before any file is made
        atomic_write_text(path, export_text(backend, [chat_id], fmt))
        return path
    chat = backend.load_chat(chat_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / export_name(chat, fmt)
    n = 2
    while path.exists():
        path = folder / f"{path.stem.rsplit('~', 1)[0]}~{n}.{fmt}"
        n += 1
    atomic_write_text(path, export_text(backend, [chat_id], fmt))
    return path


# -- imports -------------------------------------------------------------------------

@dataclass
class ImportResult:
    imported: list[str]
    #: Chats whose id is there already (an import run twice adds nothing).
    skipped: list[str]


def read_import(path: Path) -> list[dict[str, Any]]:
    """The chats of a file, in the common form: our export (one chat or a list),
    or a ChatGPT data export's conversations.json. HistoryError for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HistoryError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise HistoryError(f"{path.name}: not a JSON file ({exc})") from None
    items = data if isinstance(data, list) else [data]
    if items and all(isinstance(i, dict) and i.get("format") == EXPORT_FORMAT for i in items):
        return items
    if items and all(isinstance(i, dict) and isinstance(i.get("mapping"), dict) for i in items):
        return [from_chatgpt(i) for i in items]
    raise HistoryError(f"{path.name}: neither an rmm-tray chat export nor a ChatGPT "
                       "conversations.json")


def import_chats(backend: HistoryBackend, forms: list[dict[str, Any]]) -> ImportResult:
    # Every chat is checked before any is stored: a bad file stores nothing.
    chats = [chat_from_export(f) for f in forms]
    result = ImportResult([], [])
    for chat, form in zip(chats, forms):
        try:
            backend.load_chat(chat.id)
        except KeyError:
            backend.import_chat(form)
            result.imported.append(chat.id)
        else:
            result.skipped.append(chat.id)
    return result


_CHATGPT_ROLES = ("user", "assistant", "system")


def _chatgpt_text(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if not isinstance(content, dict):
        return None
    if content.get("content_type") not in ("text", "multimodal_text"):
        return None  # code runs, browsing, images without text: nothing to read back
    parts = content.get("parts")
    if not isinstance(parts, list):
        return None
    return "".join(p for p in parts if isinstance(p, str))


def from_chatgpt(conv: dict[str, Any]) -> dict[str, Any]:
    """One conversation of a ChatGPT export in the common form. Its message tree
    becomes our versions: a node's children are versions of one another. Nodes
    without readable text (tool calls, hidden system messages) are left out and
    their children follow the nearest message kept."""
    mapping = conv["mapping"]
    cid = str(conv.get("conversation_id") or conv.get("id") or "")
    if not cid:
        raise HistoryError("a ChatGPT conversation without an id")
    created = conv.get("create_time") if isinstance(conv.get("create_time"), (int, float)) else 0.0
    kept: dict[str, dict[str, Any]] = {}

    def keep(node_id: str, node: dict[str, Any]) -> dict[str, Any] | None:
        m = node.get("message")
        if not isinstance(m, dict):
            return None
        role = (m.get("author") or {}).get("role")
        text = _chatgpt_text(m)
        meta = m.get("metadata") if isinstance(m.get("metadata"), dict) else {}
        if role not in _CHATGPT_ROLES or text is None or meta.get("is_visually_hidden_from_conversation"):
            return None
        if role == "system" and not text.strip():
            return None
        when = m.get("create_time")
        model = meta.get("model_slug")
        return {"id": str(node_id), "parent": None, "role": role, "content": text,
                "created": float(when) if isinstance(when, (int, float)) else float(created),
                "model": model if isinstance(model, str) else None,
                "interrupted": False, "stats": None}

    roots = [k for k, n in mapping.items() if isinstance(n, dict) and not n.get("parent")]
    order: list[dict[str, Any]] = []
    nearest: dict[str, str | None] = {}
    stack: list[tuple[str, str | None]] = [(r, None) for r in reversed(roots)]
    seen: set[str] = set()
    while stack:  # parents before children, children in the export's order
        node_id, above = stack.pop()
        if node_id in seen or not isinstance(mapping.get(node_id), dict):
            continue
        seen.add(node_id)
        node = mapping[node_id]
        msg = keep(node_id, node)
        if msg is not None:
            msg["parent"] = above
            kept[node_id] = msg
            order.append(msg)
            above = node_id
        nearest[node_id] = above
        children = node.get("children") if isinstance(node.get("children"), list) else []
        stack.extend((str(c), above) for c in reversed(children))
    current = nearest.get(str(conv.get("current_node") or ""))
    title = conv.get("title") if isinstance(conv.get("title"), str) else ""
    model = conv.get("default_model_slug")
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
            "id": "chatgpt-" + "".join(c for c in cid if c.isalnum() or c == "-")[:100],
            "title": title_from(title or next((m["content"] for m in order if m["role"] == "user"), "")),
            "created": float(created), "model": model if isinstance(model, str) else None,
            "source": "import", "system": None, "template": None, "pinned": False,
            "current": current, "messages": order}


# -- moving between backends ------------------------------------------------------------

def migrate(source: HistoryBackend, target: HistoryBackend,
            progress: Callable[[int, int], None] | None = None) -> int:
    """Copy every chat (the trash included) to ``target`` and check each one's
    export there against the original, byte for byte. A chat already in the
    target must be the same; HistoryError names the first that is not."""
    try:
        trash = source.list_trash()
    except Unsupported:
        trash = []  # a backend without a trash has nothing in it
    listed = [(c.id, False) for c in source.list_chats()] + [(c.id, True) for c in trash]
    for n, (chat_id, trashed) in enumerate(listed, 1):
        form = source.export_chat(chat_id)
        try:
            there = target.export_chat(chat_id)
        except KeyError:
            target.import_chat(json.loads(json.dumps(form)))  # a copy: the target keeps nothing of ours
            there = target.export_chat(chat_id)
        if dump(there) != dump(form):
            raise HistoryError(f"chat {chat_id} differs in '{target.name}' after the copy; "
                               "the backend was not switched")
        if trashed and chat_id not in {c.id for c in target.list_trash()}:
            target.delete_chat(chat_id)
        if progress:
            progress(n, len(listed))
    return len(listed)
