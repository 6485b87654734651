"""Chat history that heals instead of losing messages: torn last lines are sealed
before the next append, a full disk leaves no empty chat, odd files in chats/ and
odd fields in records are skipped, and text printed to a terminal cannot drive it."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from pathlib import Path

import pytest

from conftest import run_cli
from rmm_tray.chat.history import ChatMessage
from rmm_tray.cli.info_cmds import terminal_safe
from rmm_tray.models.starter import STARTER_FILE, STATE_FILE
from rmm_tray.plugins import history_jsonl
from rmm_tray.plugins.history_jsonl import JsonlHistory


def skip_starter(home: Path) -> None:
    """This data home has had its starter model: a CLI run does not copy 253 MB first."""
    (home / STATE_FILE).write_text(json.dumps({"starter_installed": STARTER_FILE}))



def messages(h: JsonlHistory, cid: str) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in h.load_chat(cid).messages]


class FullDisk:
    """os.write that takes ``room`` more bytes of the chat files, then refuses
    with ENOSPC, as a file system that filled up does. Other fds are untouched."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, room: int = 0) -> None:
        self.room = room
        self.real = os.write
        monkeypatch.setattr(history_jsonl.os, "write", self)

    def __call__(self, fd: int, data: bytes) -> int:
        if fd <= 2:
            return self.real(fd, data)
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.real(fd, bytes(data[: self.room]))
        self.room -= n
        return n


# -- torn lines ----------------------------------------------------------------------

def test_an_append_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    h = JsonlHistory(tmp_path)
    cid = h.create_chat(title="t", model=None)
    h.append_message(cid, ChatMessage("user", "hello"))
    h.close()
    path = tmp_path / f"{cid}.jsonl"
    torn = '{"type": "message", "role": "assistant", "content": "half a rep'
    with path.open("a", encoding="utf-8") as fh:
        fh.write(torn)  # a crash mid-write: no newline

    again = JsonlHistory(tmp_path)  # a restarted app
    again.append_message(cid, ChatMessage("user", "are you there?"))
    chat = again.load_chat(cid)
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "hello"), ("user", "are you there?")]
    assert chat.skipped_lines == 1
    assert torn + "\n" in path.read_text(encoding="utf-8"), "the torn bytes are kept for inspection"


def test_a_full_disk_mid_append_then_space_again_loses_only_that_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = JsonlHistory(tmp_path)
    cid = h.create_chat(title="t", model=None)
    h.append_message(cid, ChatMessage("user", "first"))
    disk = FullDisk(monkeypatch, room=10)  # part of the next line lands, then ENOSPC
    with pytest.raises(OSError) as failed:
        h.append_message(cid, ChatMessage("user", "lost to the full disk"))
    assert failed.value.errno == errno.ENOSPC
    assert not (tmp_path / f"{cid}.jsonl").read_bytes().endswith(b"\n"), "the test tore a line"
    disk.room = 1 << 20  # space was freed
    h.append_message(cid, ChatMessage("user", "second"))
    chat = h.load_chat(cid)
    assert [m.content for m in chat.messages] == ["first", "second"]
    assert chat.skipped_lines == 1


def test_a_full_disk_on_a_new_chat_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = JsonlHistory(tmp_path)
    FullDisk(monkeypatch, room=0)
    with pytest.raises(OSError):
        h.create_chat(title="nothing lands", model=None)
    FullDisk(monkeypatch, room=7)  # a header torn part way
    with pytest.raises(OSError):
        h.create_chat(title="part lands", model=None)
    assert list(tmp_path.iterdir()) == []
    assert h.list_chats() == []


def test_a_full_disk_reads_as_one_line_at_the_edge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rmm_tray.errors import describe

    FullDisk(monkeypatch)
    with pytest.raises(OSError) as failed:
        JsonlHistory(tmp_path).create_chat(title="t", model=None)
    assert describe(failed.value).startswith("the disk is full")


# -- odd files in chats/ ----------------------------------------------------------------

def list_within(h: JsonlHistory, seconds: float = 5.0) -> list:
    """list_chats, failing (not hanging) if it blocks: opening a FIFO would."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(h.list_chats()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "list_chats blocked (opened a FIFO?)"
    return out[0]


def test_odd_entries_in_chats_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    h = JsonlHistory(tmp_path)
    cid = h.create_chat(title="real chat", model=None)
    h.append_message(cid, ChatMessage("user", "hi"))
    (tmp_path / "a-folder.jsonl").mkdir()
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe.jsonl")
    elsewhere = tmp_path.parent / "elsewhere.jsonl"
    elsewhere.write_text(json.dumps({"type": "chat", "title": "linked chat", "created": 1.0}) + "\n")
    (tmp_path / "linked.jsonl").symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING):
        chats = list_within(h)
    assert sorted(c.title for c in chats) == ["linked chat", "real chat"]
    for name in ("a-folder.jsonl", "dangling.jsonl", "pipe.jsonl"):
        assert sum(name in r.getMessage() for r in caplog.records) == 1, (name, caplog.text)
    with pytest.raises(KeyError):  # ChatNotFound, without blocking on the FIFO
        h.load_chat("pipe")


def test_an_unreadable_chat_is_skipped_and_the_rest_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    h = JsonlHistory(tmp_path)
    good = h.create_chat(title="good", model=None)
    bad = h.create_chat(title="bad", model=None)
    h.close()
    real_open = os.open

    def refusing(path, flags, *a):  # type: ignore[no-untyped-def]
        if str(path).endswith(f"{bad}.jsonl"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(history_jsonl.os, "open", refusing)
    with caplog.at_level(logging.WARNING):
        chats = list_within(h)
    assert [c.id for c in chats] == [good]
    assert sum(f"{bad}.jsonl" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("created", ['"yesterday"', "null", "NaN", "Infinity", "1e300", "-5", "true",
                                     "[1]", "1" + "0" * 400])
def test_an_odd_created_in_a_header_or_message_is_treated_as_missing(tmp_path: Path, created: str) -> None:
    path = tmp_path / "20240101-000000-aaaaaa.jsonl"
    path.write_text(
        f'{{"type": "chat", "id": "x", "title": "odd", "created": {created}, "model": 5}}\n'
        f'{{"type": "message", "role": "user", "content": "hi", "created": {created}}}\n',
        encoding="utf-8")
    [summary] = list_within(JsonlHistory(tmp_path))
    assert summary.title == "odd" and summary.messages == 1 and summary.model is None
    assert summary.created == pytest.approx(path.stat().st_mtime)  # the file's time instead
    assert summary.updated == summary.created
    chat = JsonlHistory(tmp_path).load_chat(path.stem)
    assert chat.messages[0].created == chat.created and chat.skipped_lines == 0


def test_wrong_types_in_a_message_count_as_missing() -> None:
    m = ChatMessage.from_dict({"role": "assistant", "content": "ok", "id": 7, "created": "noon",
                               "model": ["x"], "interrupted": "yes", "stats": "fast"})
    assert (m.role, m.content, m.model, m.interrupted, m.stats) == ("assistant", "ok", None, False, None)
    assert isinstance(m.id, str) and m.id and m.created > 0
    with pytest.raises(ValueError):
        ChatMessage.from_dict({"role": "user", "content": None})
    with pytest.raises(ValueError):
        ChatMessage.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


def test_odd_records_are_skipped_lines_not_crashes(tmp_path: Path) -> None:
    path = tmp_path / "20240101-000000-bbbbbb.jsonl"
    lines = [{"type": "chat", "title": ["not text"], "created": 100.0},
             {"type": "message", "role": "user", "content": "kept", "created": 200.0},
             {"type": "partial", "id": 3, "text": "x"}, {"type": "partial", "id": "r", "text": None},
             {"type": "retract", "id": {"a": 1}}, [1, 2], "text", 42]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    chat = JsonlHistory(tmp_path).load_chat(path.stem)
    assert [m.content for m in chat.messages] == ["kept"]
    assert chat.skipped_lines == 6 and chat.title == "kept"  # the first user message names it
    [summary] = JsonlHistory(tmp_path).list_chats()
    assert (summary.created, summary.updated) == (100.0, 200.0)


# -- what a terminal is shown -------------------------------------------------------------

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"


def test_terminal_safe_neutralises_controls_but_keeps_newlines_and_tabs() -> None:
    assert terminal_safe(f"a\tb\nc{OSC52}\x9b\u202e!") == \
        "a\tb\nc\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x9b\\u202e!"
    assert terminal_safe("one\ntwo\tthree", one_line=True) == "one\\x0atwo\\x09three"
    assert terminal_safe("héllo 👋") == "héllo 👋"


@pytest.mark.integration
def test_chats_show_and_list_print_no_escape_sequences(home: Path) -> None:
    skip_starter(home)
    h = JsonlHistory(home / "chats")
    cid = h.create_chat(title=f"title{OSC52}", model=None)
    h.append_message(cid, ChatMessage("user", f"line one\n\tindented{OSC52}"))
    h.close()

    shown = run_cli("chats", "show", cid, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "line one\n\tindented\\x1b]52;c;" in shown.stdout
    listed = run_cli("chats", "list", timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "title\\x1b]52" in listed.stdout

    exact = json.loads(run_cli("chats", "show", cid, "--json", timeout=60).stdout)
    assert exact["messages"][0]["content"] == f"line one\n\tindented{OSC52}"
    assert json.loads(run_cli("chats", "list", "--json", timeout=60).stdout)[0]["title"] == f"title{OSC52}"


@pytest.mark.integration
def test_chats_list_survives_odd_files(home: Path) -> None:
    skip_starter(home)
    chats = home / "chats"
    h = JsonlHistory(chats)
    cid = h.create_chat(title="still here", model=None)
    h.close()
    os.mkfifo(chats / "pipe.jsonl")
    (chats / "dir.jsonl").mkdir()
    (chats / "20240101-000000-cccccc.jsonl").write_text('{"type": "chat", "created": NaN}\n')
    listed = run_cli("chats", "list", "--json", timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert {c["id"] for c in json.loads(listed.stdout)} == {cid, "20240101-000000-cccccc"}
