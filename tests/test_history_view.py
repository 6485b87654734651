"""The History view's core (desktop/history_controller.py) on a real history, no
model: groups by when, pinned first, search results as the page shows them, stale
searches dropped, Undo of a delete, export to the exports folder, and opening a
chat at a hit in another version."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

import conftest
from rmm_tray import ChatMessage
from rmm_tray.app import App
from rmm_tray.desktop.chat_controller import ChatController
from rmm_tray.desktop.history_controller import HistoryController, group_of
from rmm_tray.errors import RmmError


@pytest.fixture()
def view(home: Path):
    (home / "state.json").write_text('{"starter_installed": "x"}\n')
    app = App.open()
    page = conftest.Page()
    chat = ChatController(app, page)
    controller = HistoryController(app, page, chat)
    controller.page = page
    yield controller
    app.close()


def add(h, title: str, text: str, when: float) -> str:  # type: ignore[no-untyped-def]
    cid = h.create_chat(title=title, model="m.gguf", created=when)
    q = ChatMessage("user", title, created=when)
    h.append_message(cid, q)
    h.append_message(cid, ChatMessage("assistant", text, parent=q.id, created=when + 1))
    return cid


def test_groups_by_when() -> None:
    now = dt.datetime(2025, 3, 20, 12, 0)
    at = lambda d, h=9: dt.datetime(2025, 3, d, h).timestamp()  # noqa: E731
    assert [group_of(at(20), now), group_of(at(19), now), group_of(at(14), now), group_of(at(1), now),
            group_of(dt.datetime(2024, 12, 31).timestamp(), now)] == [
        "Today", "Yesterday", "Previous 7 days", "March 2025", "December 2024"]


def test_list_search_pin_delete_undo_and_export(view: HistoryController) -> None:
    h, page = view.app.history, view.page
    now = time.time()
    old = add(h, "Old trip", "We saw a lighthouse on the cliff.", now - 40 * 86400)
    add(h, "Baking", "Knead the dough.", now - 3600)
    view.open().result(10)
    listed = page.last("history.list")["items"]
    assert [i["title"] for i in listed] == ["Baking", "Old trip"]
    assert listed[0]["group"] == "Today"

    view.pin(old, "1").result(10)
    view.search("", "1", {}).result(10)
    listed = page.last("history.list")["items"]
    assert [(i["title"], i["group"]) for i in listed] == [("Old trip", "Pinned"), ("Baking", "Today")]

    view.search("LIGHT", "2", {}).result(10)
    [hit] = page.last("history.list")["items"]
    assert hit["id"] == old and hit["message_id"]
    assert [hit["snippet"][a:b] for a, b in hit["highlights"]] == ["light"]
    view.search("light", "3", {"days": 7}).result(10)
    assert page.last("history.list")["items"] == [], "older than a week"
    view.search("dough", "4", {"model": "other.gguf"}).result(10)
    assert page.last("history.list")["items"] == []

    view.search("knead", "5", {}).result(10)
    view.search("dough", "4", {}).result(10)  # an older keystroke answered late
    assert page.last("history.list")["seq"] == 5

    view.delete(old).result(10)
    assert page.last("history.deleted") == {"type": "history.deleted", "chat_id": old, "title": "Old trip"}
    assert old not in [c.id for c in h.list_chats()]
    view.restore(old).result(10)  # Undo
    assert old in [c.id for c in h.list_chats()]

    view.export(old, "md").result(10)
    path = Path(page.last("history.exported")["path"])
    assert path.parent == view.app.home.root / "exports"
    assert "We saw a lighthouse on the cliff." in path.read_text(encoding="utf-8")
    view.export(old, "md").result(10)
    assert Path(page.last("history.exported")["path"]) != path, "never overwrites an export"
    with pytest.raises(RmmError):
        view.export(old, "pdf")
    with pytest.raises(RmmError):
        view.rename(old, " \n ")
    view.rename(old, "Cliffs\nand lights").result(10)
    assert h.load_chat(old).title == "Cliffs and lights"


def test_opening_a_hit_in_another_version_shows_that_branch(view: HistoryController) -> None:
    h, page = view.app.history, view.page
    cid = h.create_chat(title="t", model=None)
    q = ChatMessage("user", "question")
    h.append_message(cid, q)
    first = ChatMessage("assistant", "an aardvark answer", parent=q.id)
    h.append_message(cid, first)
    h.append_message(cid, ChatMessage("assistant", "a later answer", parent=q.id))
    view.search("aardvark", "1", {}).result(10)
    [hit] = page.last("history.list")["items"]
    view.open_at(cid, hit["message_id"]).result(10)
    assert [m["text"] for m in page.last("chat")["messages"]] == ["question", "an aardvark answer"]
    assert page.last("history.opened") == {"type": "history.opened", "chat_id": cid,
                                           "message_id": first.id}
    assert view.chat.chat_id == cid


def test_export_to_the_path_a_save_dialog_chose(view: HistoryController, tmp_path: Path) -> None:
    h, page = view.app.history, view.page
    chat = add(h, "Old trip", "We saw a lighthouse on the cliff.", time.time())
    target = tmp_path / "picked" / "trip.json"
    target.parent.mkdir()
    target.write_text("an older file the dialog asked to replace")
    view.export_to(chat, "json", target).result(10)
    assert page.last("history.exported")["path"] == str(target)
    assert json.loads(target.read_text(encoding="utf-8"))["title"] == "Old trip"
    with pytest.raises(RmmError):
        view.export_to(chat, "md", Path("relative.md"))
