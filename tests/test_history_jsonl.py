"""The JSONL backend reads the chats earlier versions wrote (tests/fixtures/history_v0,
written in the format of the release before versions existed) and goes on from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import REPO
from rmm_tray import ChatMessage, export_form
from rmm_tray.plugins.history_jsonl import JsonlHistory

FIXTURE = REPO / "tests" / "fixtures" / "history_v0"
OLD = "20250301-101500-a1b2c3"


def old_home(tmp_path: Path) -> JsonlHistory:
    shutil.copytree(FIXTURE, tmp_path / "chats")
    return JsonlHistory(tmp_path / "chats")


def test_old_chats_read_as_they_were_written(tmp_path: Path) -> None:
    h = old_home(tmp_path)
    listed = h.list_chats()
    assert [c.id for c in listed] == ["20250302-090000-d4e5f6", OLD]
    assert listed[1].title == "What is the capital of France? And why?", "one line"
    assert listed[0].title == "Write a haiku about tea", "named by its first question"
    chat = h.load_chat(OLD)
    assert [(m.role, m.content, m.interrupted) for m in chat.messages] == [
        ("system", "You are terse.", False),
        ("user", "What is the capital of France?\nAnd why?", False),
        ("assistant", "Paris, because the kings lived there.", False),
        ("user", "And Spain, in one word?", False),
        ("assistant", "Mad", True)], "retracted lines gone, the cut-off reply kept and marked"
    assert chat.messages[2].stats == {"completion_tokens": 9, "stop_reason": "stop"}
    assert [m.parent for m in chat.messages] == [None] + [m.id for m in chat.messages[:-1]]
    assert chat.model == "gemma-3-270m-q4_k_m.gguf" and chat.system is None and not chat.pinned
    assert h.load_chat("20250302-090000-d4e5f6").messages[-1].interrupted


def test_an_old_chat_goes_on_with_versions_and_a_rename(tmp_path: Path) -> None:
    h = old_home(tmp_path)
    question = h.load_chat(OLD).messages[3]
    h.append_message(OLD, ChatMessage("assistant", "Madrid.", parent=question.id))
    h.update_chat(OLD, title="Capitals", pinned=True)
    again = JsonlHistory(tmp_path / "chats").load_chat(OLD)
    assert [m.content for m in again.messages][-2:] == ["And Spain, in one word?", "Madrid."]
    assert [m.content for m in again.tree if m.parent == question.id] == ["Mad", "Madrid."]
    assert (again.title, again.pinned) == ("Capitals", True)
    lines = (tmp_path / "chats" / f"{OLD}.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[:12] == (FIXTURE / f"{OLD}.jsonl").read_text(encoding="utf-8").splitlines(), \
        "append-only: the old lines are untouched"
    assert json.loads(lines[-1]) == {"type": "meta", "title": "Capitals", "pinned": True}


def test_search_scans_old_chats(tmp_path: Path) -> None:
    h = old_home(tmp_path)
    [hit] = h.search("kings")
    assert hit.chat_id == OLD and hit.snippet[hit.highlights[0][0]:hit.highlights[0][1]] == "kings"
    assert export_form(h.load_chat(OLD))["messages"][0]["role"] == "system"


def test_a_list_reads_only_the_chats_that_changed(tmp_path: Path, monkeypatch) -> None:
    from rmm_tray.plugins import history_jsonl

    h = old_home(tmp_path)
    first = [c.id for c in h.list_chats()]
    reads: list[str] = []
    real = history_jsonl._read_chat
    monkeypatch.setattr(history_jsonl, "_read_chat", lambda path, chat_id, quiet=False:
                        reads.append(chat_id) or real(path, chat_id, quiet))
    again = JsonlHistory(tmp_path / "chats")  # another process, or the app restarted
    assert [c.id for c in again.list_chats()] == first and reads == [], "from chats/.index.json"
    again.append_message(OLD, ChatMessage("user", "one more"))
    listed = JsonlHistory(tmp_path / "chats").list_chats()
    assert reads == [OLD] and listed[0].id == OLD and listed[0].messages == 6
    (tmp_path / "chats" / ".index.json").write_text("{not json")
    assert [c.id for c in JsonlHistory(tmp_path / "chats").list_chats()] == [OLD, first[0]], \
        "a damaged index is rebuilt"
