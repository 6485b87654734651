"""What the popup's buttons do, in the core with the real engine: send,
regenerate, edit and resend, stop, new chat, reopen a chat, switch model."""

from __future__ import annotations

from pathlib import Path

import pytest

import conftest
from desktop_helpers import wait_for
from rmm_tray import hookimpl
from rmm_tray.app import App
from rmm_tray.desktop.chat_controller import ChatController

pytestmark = pytest.mark.slow  # every test drives the real engine


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
    controller.send("Once upon a time").result(60)
    assert page.replies_done(), "the reply"
    streaming = [e for e in page.of("message") if e["message"].get("streaming")]
    tokens = page.replies_done()[0]["stats"]["completion_tokens"]
    assert 0 < len(streaming) < tokens, "the page gets batches, not one call per token"
    assert "<p>" in page.replies_done()[0]["html"]
    assert [r for r, _ in history(controller)] == ["user", "assistant"]
    # Each batch carries only what is new: blocks once, then the unfinished tail.
    reply = page.replies_done()[0]
    for e in streaming:
        m = e["message"]
        assert m["id"] == reply["id"] and "html" not in m and "text" not in m
        assert set(m) >= {"append_html", "tail_html"}
    assert "".join(e["message"]["append_html"] for e in streaming) + \
        streaming[-1]["message"]["tail_html"] != "", "the streamed reply showed something"
    # The user's message as stored (same id as in history), sent before the reply.
    stored = controller.app.history.load_chat(controller.chat_id).messages[0]
    user = [e["message"] for e in page.of("message") if e["message"]["role"] == "user"]
    assert user == [{"id": stored.id, "role": "user", "text": "Once upon a time",
                     "interrupted": False, "streaming": False}]


def test_regenerate_and_edit_replace_the_last_exchange(controller: ChatController) -> None:
    page = controller.page
    controller.send("First question").result(60)
    assert len(page.replies_done()) == 1, "first reply"
    controller.regenerate().result(60)
    assert len(page.replies_done()) == 2, "regenerated reply"
    assert [r for r, _ in history(controller)] == ["user", "assistant"]
    assert history(controller)[0] == ("user", "First question")
    assert page.of("remove"), "the old reply left the page"

    controller.edit_last("Second question").result(60)
    assert len(page.replies_done()) == 3, "reply to the edit"
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
    controller.send("Remember me").result(60)
    assert page.replies_done(), "reply"
    first = controller.chat_id
    controller.new_chat()
    assert controller.chat_id is None and page.of("chat")[-1]["messages"] == []
    controller.open_chat(first)
    assert [m["role"] for m in page.of("chat")[-1]["messages"]] == ["user", "assistant"]
    assert any(c["id"] == first for c in controller.list_chats())

    broken = controller.app.home.models / "broken.gguf"
    broken.write_text("nope")
    controller.set_model("broken.gguf").result(30)
    assert page.of("error"), "the error"
    assert "broken.gguf: not a GGUF file" in page.of("error")[-1]["message"]
    state = page.of("state")[-1]
    assert state["status"] == "error" and "not a GGUF file" in state["error"]


def test_a_send_while_a_reply_streams_waits_for_it(controller: ChatController) -> None:
    page = controller.page
    first = controller.send("One")
    wait_for(lambda: controller._turn is not None, 30, "the first turn to start")
    second = controller.send("Two")
    first.result(60)
    second.result(60)
    assert [r for r, _ in history(controller)] == ["user", "assistant", "user", "assistant"]
    assert [c for r, c in history(controller) if r == "user"] == ["One", "Two"]
    assert len(page.replies_done()) == 2


def test_the_model_is_named_by_its_path_in_models(controller: ChatController,
                                                 starter_model: Path) -> None:
    """Two repositories may ship the same file name: history, the filters' drafts,
    the chat's header and the state all name the model by its path in models/."""
    models = controller.app.home.models
    for repo in ("org-a", "org-b"):
        (models / repo).mkdir()
        (models / repo / "x-Q4_K_M.gguf").symlink_to(starter_model)
    drafts = []

    class Spy:
        @hookimpl
        def before_send(self, draft):
            drafts.append(draft.model)

    controller.app.plugins.register(Spy(), name="spy")
    controller.set_model("org-b/x-Q4_K_M.gguf").result(60)
    assert controller.state_event()["model"] == "org-b/x-Q4_K_M.gguf"
    controller.send("Hi").result(60)
    chat = controller.app.history.load_chat(controller.chat_id)
    assert chat.model == "org-b/x-Q4_K_M.gguf"
    assert chat.messages[-1].model == "org-b/x-Q4_K_M.gguf"
    assert drafts == ["org-b/x-Q4_K_M.gguf"]


def test_an_old_chat_that_named_its_model_by_file_opens(controller: ChatController) -> None:
    import json

    chats = controller.app.home.chats
    records = [{"type": "chat", "id": "20200101-000000-abcdef", "title": "Old", "created": 1.0,
                "model": "gemma-3-270m-q4_k_m.gguf"},
               {"type": "message", "id": "u1", "role": "user", "content": "hi", "created": 1.0},
               {"type": "message", "id": "a1", "role": "assistant", "content": "**hello**",
                "created": 2.0, "model": "x-Q4_K_M.gguf"}]
    (chats / "20200101-000000-abcdef.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    controller.open_chat("20200101-000000-abcdef")
    shown = controller.page.of("chat")[-1]["messages"]
    assert [m["role"] for m in shown] == ["user", "assistant"]
    assert "<strong>hello</strong>" in shown[-1]["html"]
    controller.send("and now?").result(60)
    assert [r for r, _ in history(controller)] == ["user", "assistant", "user", "assistant"]
