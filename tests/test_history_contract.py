"""The history contract (rmm_tray.testing.history_contract) run against both
first-party backends and against a tiny third-party backend written here, the
way a plugin author would run it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from rmm_tray import (
    CHAT_FIELDS,
    ROOT,
    Chat,
    ChatMessage,
    ChatNotFound,
    ChatSummary,
    HistoryBackend,
    HistoryError,
    active_path,
    new_chat_id,
    title_from,
)
from rmm_tray.plugins.history_jsonl import JsonlHistory
from rmm_tray.plugins.history_sqlite import SqliteHistory
from rmm_tray.testing.history_contract import HistoryContract


class TestJsonl(HistoryContract):
    @pytest.fixture
    def history_factory(self, tmp_path: Path):
        return lambda: JsonlHistory(tmp_path / "chats")


class TestSqlite(HistoryContract):
    @pytest.fixture
    def history_factory(self, tmp_path: Path):
        return lambda: SqliteHistory(tmp_path / "history.sqlite3")


# -- a third party's backend: every chat in a dict, search and export left to the defaults --

class DictHistory(HistoryBackend):
    name = "dict"

    def __init__(self, store: dict[str, dict[str, Any]]) -> None:
        self.store = store  # shared by every instance: "the same storage"

    def _get(self, chat_id: str) -> dict[str, Any]:
        if chat_id not in self.store:
            raise ChatNotFound(f"no chat '{chat_id}'")
        return self.store[chat_id]

    def create_chat(self, *, title, model, source=None, system=None, template=None,
                    chat_id=None, created=None):  # type: ignore[no-untyped-def]
        chat_id = chat_id or new_chat_id()
        if chat_id in self.store:
            raise HistoryError("taken")
        self.store[chat_id] = {"title": title_from(title), "model": model, "source": source,
                               "system": system, "template": template, "pinned": False,
                               "current": None, "deleted": None, "tree": [],
                               "created": 0.0 if created is None else created}
        return chat_id

    def append_message(self, chat_id, message):  # type: ignore[no-untyped-def]
        c = self._get(chat_id)
        old = next((m for m in c["tree"] if m.id == message.id), None)
        message = copy.deepcopy(message)
        if old is not None:
            message.parent = old.parent if message.parent is None else (message.parent or None)
            c["tree"][c["tree"].index(old)] = message
        else:
            message.parent = c["current"] if message.parent is None else (message.parent or None)
            c["tree"].append(message)
        c["current"] = message.id

    def append_partial(self, chat_id, message_id, text):  # type: ignore[no-untyped-def]
        c = self._get(chat_id)
        old = next((m for m in c["tree"] if m.id == message_id), None)
        if old is None:
            c["tree"].append(ChatMessage("assistant", text, id=message_id, interrupted=True,
                                         parent=c["current"]))
            c["current"] = message_id
        elif old.interrupted:
            old.content += text

    def load_chat(self, chat_id):  # type: ignore[no-untyped-def]
        c = self._get(chat_id)
        tree = copy.deepcopy(c["tree"])
        current = c["current"]
        return Chat(chat_id, c["title"], c["created"], c["model"], active_path(tree, current),
                    tree=tree, current=current, pinned=c["pinned"], source=c["source"],
                    system=c["system"], template=c["template"], deleted=c["deleted"])

    def _summaries(self, deleted: bool) -> list[ChatSummary]:
        return [self.load_chat(i).summary() for i, c in self.store.items()
                if (c["deleted"] is not None) == deleted]

    def list_chats(self):  # type: ignore[no-untyped-def]
        return sorted(self._summaries(False), key=lambda c: c.updated, reverse=True)

    def list_trash(self):  # type: ignore[no-untyped-def]
        return sorted(self._summaries(True), key=lambda c: c.deleted, reverse=True)

    def update_chat(self, chat_id, **changes):  # type: ignore[no-untyped-def]
        c = self._get(chat_id)
        if set(changes) - set(CHAT_FIELDS):
            raise HistoryError("unknown field")
        if "current" in changes and changes["current"] not in [m.id for m in c["tree"]]:
            raise HistoryError("no such message")
        if "title" in changes:
            changes["title"] = title_from(changes["title"])
        c.update(changes)

    def delete_chat(self, chat_id):  # type: ignore[no-untyped-def]
        self._get(chat_id)["deleted"] = 1.0

    def restore_chat(self, chat_id):  # type: ignore[no-untyped-def]
        self._get(chat_id)["deleted"] = None

    def purge_chat(self, chat_id):  # type: ignore[no-untyped-def]
        self._get(chat_id)
        del self.store[chat_id]


class TestThirdParty(HistoryContract):
    @pytest.fixture
    def history_factory(self):
        store: dict[str, dict[str, Any]] = {}
        return lambda: DictHistory(store)


class Forgetful(DictHistory):
    """A backend that drops a message's parent: the suite must catch it."""

    def append_message(self, chat_id, message):  # type: ignore[no-untyped-def]
        message = copy.deepcopy(message)
        message.parent = ROOT
        super().append_message(chat_id, message)


def test_the_suite_fails_a_backend_that_loses_versions() -> None:
    store: dict[str, dict[str, Any]] = {}
    suite = HistoryContract()
    with pytest.raises(AssertionError):
        suite.test_versions_are_kept_and_the_chosen_one_is_continued(
            Forgetful(store), lambda: Forgetful(store))
