"""Real generation on the starter model through the CLI, as a person runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CLI, REPO, json_lines, run_cli

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_chat_streams_tokens_with_stats_and_saves_the_turn(home_with_model: Path) -> None:
    first = run_cli("chat", "--json", "--max-tokens", "20", "The capital of France is")
    assert first.returncode == 0, first.stderr
    events = json_lines(first.stdout)
    tokens = [e for e in events if e["type"] == "token"]
    done = events[-1]
    assert len(tokens) >= 2, "the reply should arrive in pieces"
    assert done["type"] == "done"
    for key in ("chat_id", "prompt_tokens", "completion_tokens", "ttft_s", "decode_tok_s"):
        assert key in done
    assert done["completion_tokens"] > 0 and done["decode_tok_s"] > 0 and done["ttft_s"] > 0
    reply = "".join(t["text"] for t in tokens)

    shown = json.loads(run_cli("chats", "show", done["chat_id"], "--json").stdout)
    roles = [(m["role"], m["content"]) for m in shown["messages"]]
    assert roles == [("user", "The capital of France is"), ("assistant", reply)]
    assert not shown["messages"][1]["interrupted"]

    second = run_cli("chat", "--json", "-c", done["chat_id"], "--max-tokens", "8", "And Spain?")
    assert second.returncode == 0, second.stderr
    done2 = json_lines(second.stdout)[-1]
    assert done2["chat_id"] == done["chat_id"]
    # The whole conversation went to the model, not just the new line.
    assert done2["prompt_tokens"] > done["prompt_tokens"] + done["completion_tokens"]
    shown = json.loads(run_cli("chats", "show", done["chat_id"], "--json").stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant", "user", "assistant"]
    assert "And Spain?" in run_cli("chats", "show", done["chat_id"]).stdout


@pytest.mark.slow
def test_plain_output_and_stats_line(home_with_model: Path) -> None:
    result = run_cli("chat", "--stats", "--max-tokens", "12", "Once upon a time")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "the reply goes to stdout"
    assert "tok/s" in result.stderr and "first token" in result.stderr


@pytest.mark.slow
def test_prompt_from_stdin(home_with_model: Path) -> None:
    result = run_cli("chat", "--json", "--max-tokens", "4", "-", input="Hello there")
    assert result.returncode == 0, result.stderr
    chat_id = json_lines(result.stdout)[-1]["chat_id"]
    shown = json.loads(run_cli("chats", "show", chat_id, "--json").stdout)
    assert shown["messages"][0]["content"] == "Hello there"


@pytest.mark.slow
def test_kill_9_while_streaming_keeps_the_partial_reply(home_with_model: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "chat", "--json", "--max-tokens", "1000", "--temperature", "0.8",
         "Tell me a long story about a lighthouse keeper."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=os.environ.copy(),
    )
    assert proc.stdout is not None
    streamed = []
    started = None
    for line in proc.stdout:
        event = json.loads(line)
        assert event["type"] == "token", event
        streamed.append(event["text"])
        started = started or time.monotonic()
        # Long enough for a partial write (every 0.2 s) to have happened.
        if len(streamed) >= 20 and time.monotonic() - started > 0.6:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    # What it printed before it died and we had not read yet: all of it was shown.
    for line in proc.stdout.read().splitlines():
        try:
            streamed.append(json.loads(line)["text"])
        except (ValueError, KeyError):
            break  # a line cut by the kill

    chats = json.loads(run_cli("chats", "list", "--json").stdout)
    assert len(chats) == 1
    shown = run_cli("chats", "show", chats[0]["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    messages = json.loads(shown.stdout)["messages"]
    assert messages[0]["role"] == "user" and "lighthouse" in messages[0]["content"]
    reply = messages[1]
    assert reply["role"] == "assistant" and reply["interrupted"] is True
    assert reply["content"], "the words already shown are kept"
    assert "".join(streamed).startswith(reply["content"])
    assert "[interrupted]" in run_cli("chats", "show", chats[0]["id"]).stdout


def test_missing_model_is_one_clear_line(home: Path) -> None:
    result = run_cli("chat", "-m", "nonesuch", "hi")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no model matches 'nonesuch'" in lines[0]
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2(home: Path) -> None:
    result = run_cli("chat", "--max-tokens", "lots", "hi")
    assert result.returncode == 2
