"""`rmm-tray chats ...` as a person types it: list, show, search, rename, pin, trash,
export, import (ours and ChatGPT's), migrate; Recent chats keeps the popup's."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import run_cli
from rmm_tray import ChatMessage
from rmm_tray.app import App
from rmm_tray.chat.history import recent_chats


@pytest.fixture()
def quiet_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (home / "state.json").write_text('{"starter_installed": "x"}\n')  # no 253 MB copy
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> SimpleNamespace:
    from rmm_tray.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def backend(name: str = "jsonl"):  # type: ignore[no-untyped-def]
    app = App.open()
    found = app.plugins.collect("register_history_backends", lambda o: True, "", app=app)
    return next(b for _, b in found if b.name == name)


def make_chat(h, title: str, exchanges: list[tuple[str, str]], **meta) -> str:  # type: ignore[no-untyped-def]
    cid = h.create_chat(title=title, model=meta.pop("model", "m.gguf"), **meta)
    for q, a in exchanges:
        user = ChatMessage("user", q)
        h.append_message(cid, user)
        h.append_message(cid, ChatMessage("assistant", a, parent=user.id))
    return cid


def test_list_show_search_rename_pin_and_the_trash(quiet_home: Path, capsys) -> None:
    h = backend()
    first = make_chat(h, "Line one\nline two", [("Tell me about otters", "Otters hold hands.")],
                      source="popup")
    second = make_chat(h, "Scripted", [("ping", "pong")], source="cli")
    h.close()

    listed = cli(capsys, "chats", "list")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert len(rows) == 3, "a header and one line per chat: titles never wrap"
    assert "Line one line two" in rows[2] and "popup" in rows[2] and second in rows[1]
    only_cli = json.loads(cli(capsys, "chats", "list", "--json", "--source", "cli").stdout)
    assert [c["id"] for c in only_cli] == [second]
    newest = json.loads(cli(capsys, "chats", "list", "--json", "--limit", "1").stdout)
    assert [c["id"] for c in newest] == [second]

    found = cli(capsys, "chats", "search", "OTTER")
    assert found.returncode == 0 and first in found.stdout and "Tell me about otters" in found.stdout
    assert "\x1b" not in found.stdout, "no highlight codes when stdout is not a terminal"
    hits = json.loads(cli(capsys, "chats", "search", "otter", "--json").stdout)
    assert [(x["chat_id"], x["snippet"][x["highlights"][0][0]:x["highlights"][0][1]]) for x in hits] == [
        (first, "otter")]
    assert cli(capsys, "chats", "search", "otter", "--model", "other.gguf").returncode == 1
    assert cli(capsys, "chats", "search", "otter", "--since", "2999-01-01").returncode == 1
    bad = cli(capsys, "chats", "search", "otter", "--since", "yesterday")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr

    assert cli(capsys, "chats", "rename", first, "Otters,\nand more").returncode == 0
    assert cli(capsys, "chats", "pin", first).returncode == 0
    [pinned] = [c for c in json.loads(cli(capsys, "chats", "list", "--json").stdout) if c["id"] == first]
    assert (pinned["title"], pinned["pinned"]) == ("Otters, and more", True)
    assert cli(capsys, "chats", "unpin", first).returncode == 0
    assert not json.loads(cli(capsys, "chats", "show", first, "--json").stdout)["pinned"]

    gone = cli(capsys, "chats", "rm", first, "nonesuch-1")
    assert gone.returncode == 1 and "nonesuch-1" in gone.stderr, "one bad id: nothing removed"
    assert first in cli(capsys, "chats", "list").stdout
    assert cli(capsys, "chats", "rm", first).returncode == 0
    assert first not in cli(capsys, "chats", "list").stdout
    assert first in cli(capsys, "chats", "list", "--trash").stdout
    assert cli(capsys, "chats", "search", "otter").returncode == 1, "the trash is not searched"
    assert cli(capsys, "chats", "restore", first).returncode == 0
    assert first in cli(capsys, "chats", "list").stdout


def test_show_marks_versions_and_all_versions_shows_them(quiet_home: Path, capsys) -> None:
    h = backend()
    cid = h.create_chat(title="t", model=None)
    q = ChatMessage("user", "question")
    h.append_message(cid, q)
    h.append_message(cid, ChatMessage("assistant", "first answer", parent=q.id))
    h.append_message(cid, ChatMessage("assistant", "second answer", parent=q.id))
    h.close()
    shown = cli(capsys, "chats", "show", "last").stdout
    assert "second answer" in shown and "first answer" not in shown and "[version 2/2]" in shown
    every = cli(capsys, "chats", "show", cid, "--all-versions").stdout
    assert "first answer" in every and "second answer" in every and "[version 1/2]" in every


def test_export_markdown_and_json_then_import_back(quiet_home: Path, tmp_path: Path, capsys) -> None:
    h = backend()
    cid = make_chat(h, "Recipes", [("How do I boil an egg?", "Put it in **boiling** water.")])
    h.close()
    md = tmp_path / "out.md"
    assert cli(capsys, "chats", "export", cid, "-o", str(md)).returncode == 0
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Recipes") and "## You\n\nHow do I boil an egg?" in text
    assert "## Assistant\n\nPut it in **boiling** water." in text

    exported = cli(capsys, "chats", "export", "--all", "--format", "json").stdout
    form = json.loads(exported)
    assert form["id"] == cid and form["format"] == "rmm-chat"
    assert cli(capsys, "chats", "rm", "--purge", cid).returncode == 0
    saved = tmp_path / "chat.json"
    saved.write_text(exported, encoding="utf-8")
    back = cli(capsys, "chats", "import", str(saved))
    assert back.returncode == 0 and "imported 1 chat" in back.stderr
    assert cli(capsys, "chats", "export", cid, "--format", "json").stdout == exported
    again = cli(capsys, "chats", "import", str(saved))
    assert "imported 0 chat(s); 1 already there" in again.stderr

    assert cli(capsys, "chats", "export").returncode == 1, "nothing named"
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    refused = cli(capsys, "chats", "import", str(junk))
    assert refused.returncode == 1 and "neither an rmm-tray chat export nor a ChatGPT" in refused.stderr


def chatgpt_export() -> list[dict]:
    """A conversations.json as ChatGPT's data export writes it: a message tree in
    "mapping", where an edited question and a regenerated answer are siblings."""
    def node(nid, parent, children, role=None, text=None, t=0.0, ctype="text", **meta):  # type: ignore[no-untyped-def]
        message = None if role is None else {
            "id": nid, "author": {"role": role}, "create_time": t,
            "content": {"content_type": ctype, "parts": [text]}, "metadata": meta}
        return {"id": nid, "message": message, "parent": parent, "children": children}

    mapping = {
        "root": node("root", None, ["sys"]),
        "sys": node("sys", "root", ["q1"], "system", "", 1.0, is_visually_hidden_from_conversation=True),
        "q1": node("q1", "sys", ["a1", "a1b"], "user", "Name a red fruit", 2.0),
        "a1": node("a1", "q1", ["q2"], "assistant", "A strawberry.", 3.0, model_slug="gpt-4o"),
        "a1b": node("a1b", "q1", ["tool"], "assistant", "A cherry.", 4.0, model_slug="gpt-4o"),
        "tool": node("tool", "a1b", ["q3"], "tool", "search results", 4.5, ctype="tether_quote"),
        "q3": node("q3", "tool", [], "user", "Why cherries?", 5.0),
        "q2": node("q2", "a1", [], "user", "And a yellow one?", 6.0),
    }
    return [{"title": "Fruit\nquiz", "create_time": 1.0, "update_time": 6.0, "mapping": mapping,
             "current_node": "q3", "conversation_id": "abc-123", "default_model_slug": "gpt-4o"}]


def test_import_of_a_chatgpt_export_keeps_its_branches(quiet_home: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(chatgpt_export()), encoding="utf-8")
    result = cli(capsys, "chats", "import", str(path))
    assert result.returncode == 0, result.stderr
    h = backend()
    [summary] = h.list_chats()
    chat = h.load_chat(summary.id)
    assert (chat.title, chat.model, chat.source) == ("Fruit quiz", "gpt-4o", "import")
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "Name a red fruit"), ("assistant", "A cherry."), ("user", "Why cherries?")], \
        "the branch ChatGPT showed last; tool output and hidden prompts left out"
    assert [m.content for m in chat.tree if m.parent == "q1"] == ["A strawberry.", "A cherry."]
    assert [m.content for m in chat.tree if m.parent == "a1"] == ["And a yellow one?"]
    assert chat.messages[1].model == "gpt-4o" and chat.messages[0].created == 2.0
    assert [x.chat_id for x in h.search("strawberry")] == [chat.id], "other branches are searched"


def test_recent_chats_are_the_popups(quiet_home: Path) -> None:
    from rmm_tray.desktop.chat_controller import ChatController

    h = backend()
    popup = make_chat(h, "From the popup", [("hi", "hello")], source="popup")
    old = make_chat(h, "Before sources", [("hi", "hello")])
    for n in range(12):
        make_chat(h, f"one-shot {n}", [("q", "a")], source="cli")
    h.close()
    app = App.open()
    try:
        assert [c.id for c in recent_chats(app.history, 10)] == [old, popup]
        events: list[dict] = []
        items = ChatController(app, events.append).list_chats()
        assert [i["id"] for i in items] == [old, popup]
    finally:
        app.close()


@pytest.mark.integration
def test_migrate_jsonl_to_sqlite_and_back_is_byte_for_byte(quiet_home: Path) -> None:
    h = backend()
    kept = make_chat(h, "Kept", [("one", "two"), ("three", "four")], source="popup")
    q = ChatMessage("user", "versions?")
    h.append_message(kept, q)
    first = ChatMessage("assistant", "first", parent=q.id)
    h.append_message(kept, first)
    h.append_message(kept, ChatMessage("assistant", "second", parent=q.id))
    h.update_chat(kept, current=first.id, pinned=True)
    h.append_partial(kept, "cut", "half a rep")  # a reply a crash cut off
    trashed = make_chat(h, "Trashed", [("x", "y")])
    h.delete_chat(trashed)
    h.close()

    def export_all() -> str:
        out = run_cli("chats", "export", kept, "--format", "json", timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    before = export_all()
    to_sqlite = run_cli("chats", "migrate", "--to", "sqlite", timeout=120)
    assert to_sqlite.returncode == 0, to_sqlite.stderr
    assert "copied and checked 2 chat(s)" in to_sqlite.stderr
    assert 'backend = "sqlite"' in (quiet_home / "config.toml").read_text()
    assert export_all() == before
    assert (quiet_home / "history.sqlite3").exists()
    trash = json.loads(run_cli("chats", "list", "--trash", "--json", timeout=60).stdout)
    assert [c["id"] for c in trash] == [trashed]

    # Back into an empty JSONL history: every file rebuilt from SQLite alone.
    for path in (quiet_home / "chats").glob("*.jsonl"):
        path.unlink()
    back = run_cli("chats", "migrate", "--to", "jsonl", timeout=120)
    assert back.returncode == 0, back.stderr
    assert export_all() == before
    again = run_cli("chats", "migrate", "--to", "jsonl", timeout=60)
    assert again.returncode == 1 and "already" in again.stderr
    nowhere = run_cli("chats", "migrate", "--to", "nonesuch", timeout=60)
    assert nowhere.returncode == 1 and "no history backend 'nonesuch' (have: jsonl, sqlite)" in nowhere.stderr


@pytest.mark.slow
@pytest.mark.integration
def test_chat_no_save_keeps_nothing(home_with_model: Path) -> None:
    (home_with_model / "state.json").write_text('{"starter_installed": "x"}\n')
    said = run_cli("chat", "--no-save", "--json", "Hello there", timeout=180)
    assert said.returncode == 0, said.stderr
    assert [json.loads(line)["type"] for line in said.stdout.splitlines()][-1] == "done"
    assert json.loads(run_cli("chats", "list", "--json", timeout=60).stdout) == []

    kept = run_cli("chat", "--json", "Remember this", timeout=180)
    chat_id = json.loads(kept.stdout.splitlines()[-1])["chat_id"]
    before = run_cli("chats", "export", chat_id, "--format", "json", timeout=60).stdout
    again = run_cli("chat", "--no-save", "-c", chat_id, "And now?", timeout=180)
    assert again.returncode == 0, again.stderr
    assert run_cli("chats", "export", chat_id, "--format", "json", timeout=60).stdout == before, \
        "a chat continued with --no-save stays as it was"
    listed = json.loads(run_cli("chats", "list", "--json", "--source", "cli", timeout=60).stdout)
    assert [c["id"] for c in listed] == [chat_id]


def test_a_backend_written_for_the_old_contract_still_works_and_says_what_it_cannot(
        quiet_home: Path, capsys) -> None:
    (quiet_home / "plugins" / "old_history.py").write_text(
        "from rmm_tray import Chat, ChatSummary, HistoryBackend, hookimpl\n"
        "class Old(HistoryBackend):\n"
        "    name = 'old'\n"
        "    chats = {'c1': Chat('c1', 'Kept in memory', 1.0, None, [])}\n"
        "    def create_chat(self, *, title, model): return 'c1'\n"
        "    def append_message(self, chat_id, message): pass\n"
        "    def load_chat(self, chat_id): return self.chats[chat_id]\n"
        "    def list_chats(self):\n"
        "        return [ChatSummary('c1', 'Kept in memory', 1.0, 1.0, 0)]\n"
        "@hookimpl\n"
        "def register_history_backends(register):\n"
        "    register(Old())\n")
    with (quiet_home / "config.toml").open("a") as fh:
        fh.write('[history]\nbackend = "old"\n')
    assert "Kept in memory" in cli(capsys, "chats", "list").stdout
    assert "Kept in memory" in cli(capsys, "chats", "search", "kept").stdout, "search by reading"
    assert json.loads(cli(capsys, "chats", "export", "c1", "--format", "json").stdout)["id"] == "c1"
    refused = cli(capsys, "chats", "rm", "c1")
    assert refused.returncode == 1
    assert refused.stderr.strip() == \
        "rmm-tray: error: the 'old' history backend cannot move a chat to the trash"
