"""Crashes and crowds: a `kill -9` mid-reply on the SQLite backend keeps the
question and the words shown (marked interrupted); several processes writing one
history at once (CLI chats and the tray) lose no turn, on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import CLI, REPO, run_cli
from rmm_tray.app import App
from rmm_tray.desktop.chat_controller import ChatController
from rmm_tray.plugins.history_jsonl import JsonlHistory
from rmm_tray.plugins.history_sqlite import SqliteHistory

BACKENDS = ["jsonl", "sqlite"]


def use_backend(home: Path, name: str, max_tokens: int = 24, threads: int = 0) -> None:
    (home / "config.toml").write_text(
        f"[model]\ncontext_length = 1024\nthreads = {threads}\n"
        f"[generation]\ntemperature = 0.0\nmax_tokens = {max_tokens}\n"
        f'[history]\nbackend = "{name}"\n')
    (home / "state.json").write_text('{"starter_installed": "x"}\n')


def open_backend(home: Path, name: str):  # type: ignore[no-untyped-def]
    return SqliteHistory(home / "history.sqlite3") if name == "sqlite" else JsonlHistory(home / "chats")


@pytest.mark.slow
@pytest.mark.integration
def test_kill_9_mid_stream_keeps_the_question_and_the_partial_reply(home_with_model: Path) -> None:
    use_backend(home_with_model, "sqlite", max_tokens=400)
    proc = subprocess.Popen([*CLI, "chat", "--json", "Write a long story about a lighthouse keeper"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
                            env=os.environ.copy())
    streamed = ""
    tokens = 0
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while tokens < 12 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            if event["type"] == "token":
                streamed += event["text"]
                tokens += 1
        assert tokens >= 12, "the reply was streaming"
        time.sleep(0.6)  # a partial is stored at most every 0.2 s, after it was shown
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        for line in proc.stdout.read().splitlines():  # what it printed before it died
            event = json.loads(line) if line.startswith("{") and line.endswith("}") else {}
            if event.get("type") == "token":
                streamed += event["text"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    h = SqliteHistory(home_with_model / "history.sqlite3")
    [summary] = h.list_chats()
    chat = h.load_chat(summary.id)
    user, reply = chat.messages
    assert (user.role, user.content, user.interrupted) == (
        "user", "Write a long story about a lighthouse keeper", False)
    assert reply.role == "assistant" and reply.interrupted, "marked interrupted"
    assert reply.content and streamed.startswith(reply.content), "the words shown, as shown"
    assert len(reply.content) >= len(streamed) // 2, "most of what was shown"
    assert summary.messages == 2 and chat.source == "cli"
    shown = run_cli("chats", "show", summary.id, timeout=60)
    assert "assistant [interrupted]:" in shown.stdout
    h.close()


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from rmm_tray import ChatMessage
    from rmm_tray.plugins.history_jsonl import JsonlHistory
    from rmm_tray.plugins.history_sqlite import SqliteHistory

    name, home, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    h = SqliteHistory(home / "history.sqlite3") if name == "sqlite" else JsonlHistory(home / "chats")
    cid = h.create_chat(title=f"writer {n}", model=None, source="cli")
    for i in range(40):
        q = ChatMessage("user", f"{n} asks {i}")
        h.append_message(cid, q)
        h.append_partial(cid, f"r{n}-{i}", f"{n} answers ")
        h.append_message(cid, ChatMessage("assistant", f"{n} answers {i}", id=f"r{n}-{i}", parent=q.id))
    h.close()
""")


@pytest.mark.integration
@pytest.mark.parametrize("name", BACKENDS)
def test_processes_writing_at_once_lose_no_turn(tmp_path: Path, name: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(tmp_path), str(n)], cwd=REPO)
             for n in range(4)]
    for p in procs:
        assert p.wait(120) == 0
    h = open_backend(tmp_path, name)
    chats = h.list_chats()
    assert len(chats) == 4
    for c in chats:
        n = c.title.split()[1]
        expected = [t for i in range(40) for t in (f"{n} asks {i}", f"{n} answers {i}")]
        messages = h.load_chat(c.id).messages
        assert [m.content for m in messages] == expected
        assert not any(m.interrupted for m in messages)
    h.close()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(900)  # three models decoding on two cores, beside whatever else runs
@pytest.mark.parametrize("name", BACKENDS)
def test_two_cli_chats_and_the_tray_at_once(home_with_model: Path, name: str) -> None:
    # One thread each: three engines spinning two threads each on two cores crawl.
    use_backend(home_with_model, name, threads=1)
    clis = [subprocess.Popen([*CLI, "chat", "--json", prompt], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO, env=os.environ.copy())
            for prompt in ("Tell me about whales", "Tell me about owls")]
    app = App.open()
    try:
        page: list[dict] = []
        tray = ChatController(app, page.append)
        tray.send("Tell me about foxes").result(240)
        tray.send("And their cubs?").result(240)
        tray_chat = tray.chat_id
    finally:
        app.close()
    streamed = {}
    for proc, prompt in zip(clis, ("Tell me about whales", "Tell me about owls")):
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        streamed[prompt] = "".join(e["text"] for e in events if e["type"] == "token")

    h = open_backend(home_with_model, name)
    chats = {h.load_chat(c.id).messages[0].content: h.load_chat(c.id) for c in h.list_chats()}
    assert set(chats) == {"Tell me about whales", "Tell me about owls", "Tell me about foxes"}
    for prompt, text in streamed.items():
        user, reply = chats[prompt].messages
        assert chats[prompt].source == "cli" and user.role == "user"
        assert not reply.interrupted and reply.content == text, "whole, as streamed"
    fox = chats["Tell me about foxes"]
    assert fox.id == tray_chat and fox.source == "popup"
    assert [m.role for m in fox.messages] == ["user", "assistant", "user", "assistant"]
    assert not any(m.interrupted for m in fox.messages)
    h.close()
