"""What the popup's buttons do, in the core with the real engine: send,
regenerate, edit and resend, stop, new chat, reopen a chat, switch model."""

from __future__ import annotations

from pathlib import Path

import pytest

import conftest
from desktop_helpers import wait_for
from rmm_tray.app import App
from rmm_tray.desktop.chat_controller import ChatController


class Page(conftest.Page):
    def replies_done(self) -> list[dict]:
        return [e["message"] for e in self.of("message")
                if e["message"]["role"] == "assistant" and not e["message"]["streaming"]]


@pytest.fixture()
def controller(home_with_model: Path):
    app = App.open()
    page = Page()
    ctl = ChatController(app, page)
    ctl.page = page
    yield ctl
    app.close()


def history(ctl: ChatController) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in ctl.app.history.load_chat(ctl.chat_id).messages]


def test_send_streams_in_batches_then_saves(controller: ChatController) -> None:
    page = controller.page
    controller.send("Once upon a time")
    wait_for(page.replies_done, 60, "the reply")
    streaming = [e for e in page.of("message") if e["message"].get("streaming")]
    tokens = page.replies_done()[0]["stats"]["completion_tokens"]
    assert 0 < len(streaming) < tokens, "the page gets batches, not one call per token"
    assert "<p>" in page.replies_done()[0]["html"]
    assert [r for r, _ in history(controller)] == ["user", "assistant"]


def test_regenerate_and_edit_replace_the_last_exchange(controller: ChatController) -> None:
    page = controller.page
    controller.send("First question")
    wait_for(lambda: len(page.replies_done()) == 1, 60, "first reply")
    controller.regenerate()
    wait_for(lambda: len(page.replies_done()) == 2, 60, "regenerated reply")
    assert [r for r, _ in history(controller)] == ["user", "assistant"]
    assert history(controller)[0] == ("user", "First question")
    assert page.of("remove"), "the old reply left the page"

    controller.edit_last("Second question")
    wait_for(lambda: len(page.replies_done()) == 3, 60, "reply to the edit")
    assert [m for m in history(controller)][0] == ("user", "Second question")
    assert len(history(controller)) == 2


def test_stop_keeps_the_partial_reply(controller: ChatController) -> None:
    page = controller.page
    controller.app.config["generation"]["max_tokens"] = 400
    controller.send("Write a long story about the sea")
    wait_for(lambda: any(e["message"].get("streaming") for e in page.of("message")), 30, "tokens")
    controller.stop()
    reply = wait_for(page.replies_done, 30, "the stopped reply")[0]
    assert reply["interrupted"] is True and reply["text"]
    assert controller.app.history.load_chat(controller.chat_id).messages[-1].interrupted


def test_new_chat_open_chat_and_bad_model(controller: ChatController, tmp_path: Path) -> None:
    page = controller.page
    controller.send("Remember me")
    wait_for(page.replies_done, 60, "reply")
    first = controller.chat_id
    controller.new_chat()
    assert controller.chat_id is None and page.of("chat")[-1]["messages"] == []
    controller.open_chat(first)
    assert [m["role"] for m in page.of("chat")[-1]["messages"]] == ["user", "assistant"]
    assert any(c["id"] == first for c in controller.list_chats())

    broken = controller.app.home.models / "broken.gguf"
    broken.write_text("nope")
    controller.set_model("broken.gguf")
    wait_for(lambda: page.of("error"), 30, "the error")
    assert "broken.gguf: not a GGUF file" in page.of("error")[-1]["message"]
    state = page.of("state")[-1]
    assert state["status"] == "error" and "not a GGUF file" in state["error"]
