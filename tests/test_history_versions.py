"""Versions instead of loss, in the core with the real model: Regenerate keeps
every earlier reply, Edit makes a new branch and keeps the old one, and the next
turn continues from the version chosen (checked on the prompt the engine gets)."""

from __future__ import annotations

from pathlib import Path

import pytest

import conftest
from rmm_tray import hookimpl
from rmm_tray.app import App
from rmm_tray.chat.history import versions
from rmm_tray.desktop.chat_controller import ChatController

pytestmark = pytest.mark.slow


class Numbered:
    """Tags each reply with its number (an after_reply filter), so replies that
    greedy decoding makes alike can be told apart in the prompt."""

    def __init__(self) -> None:
        self.n = 0

    @hookimpl
    def after_reply(self, draft):  # type: ignore[no-untyped-def]
        self.n += 1
        draft.text = f"{draft.text} [reply {self.n}]"


@pytest.fixture()
def ctl(home_with_model: Path):
    app = App.open()
    app.plugins.register(Numbered(), name="numbered")
    page = conftest.Page()
    controller = ChatController(app, page)
    controller.page = page
    prompts: list[list[dict]] = []
    real = app.engine.chat

    def spy(messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        prompts.append([dict(m) for m in messages])
        return real(messages, *args, **kwargs)

    app.engine.chat = spy  # type: ignore[method-assign]
    controller.prompts = prompts
    yield controller
    app.close()


def final_replies(page: conftest.Page) -> list[dict]:
    return [e["message"] for e in page.of("message")
            if e["message"]["role"] == "assistant" and not e["message"]["streaming"]]


def test_regenerate_twice_keeps_three_replies_and_the_chosen_one_goes_on(ctl: ChatController) -> None:
    page = ctl.page
    ctl.send("Name a colour").result(120)
    ctl.regenerate().result(120)
    ctl.regenerate().result(120)
    chat = ctl.app.history.load_chat(ctl.chat_id)
    user, shown = chat.messages
    replies = versions(chat, shown.id)
    assert [r.content.rsplit(" ", 2)[-2:] for r in replies] == [
        ["[reply", "1]"], ["[reply", "2]"], ["[reply", "3]"]], "no reply lost"
    assert shown.id == replies[2].id
    assert final_replies(page)[-1]["versions"] == {"index": 3, "count": 3,
                                                   "prev": replies[1].id, "next": None}
    assert ctl.prompts[1] == ctl.prompts[2] == [{"role": "user", "content": "Name a colour"}], \
        "a regenerated reply sees the question, not the replies it replaces"

    ctl.choose_version(replies[0].id)  # ‹ twice
    drawn = page.of("chat")[-1]["messages"]
    assert [m["id"] for m in drawn] == [user.id, replies[0].id]
    assert drawn[1]["versions"] == {"index": 1, "count": 3, "prev": None, "next": replies[1].id}

    ctl.send("And another one?").result(120)
    assert ctl.prompts[-1] == [
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": replies[0].content},
        {"role": "user", "content": "And another one?"}], "the next turn continues from version 1"
    chat = ctl.app.history.load_chat(ctl.chat_id)
    assert [m.id for m in chat.messages[:2]] == [user.id, replies[0].id]
    assert len(chat.tree) == 6


def test_an_edit_is_a_new_branch_and_the_old_one_stays(ctl: ChatController) -> None:
    page = ctl.page
    ctl.send("What is the capital of France?").result(120)
    ctl.send("And of Spain?").result(120)
    chat = ctl.app.history.load_chat(ctl.chat_id)
    first_q, first_a, old_q, old_a = chat.messages

    ctl.edit_message(old_q.id, "And of Italy?").result(120)
    assert {e["id"] for e in page.of("remove")} >= {old_q.id, old_a.id}, "the old branch left the page"
    assert ctl.prompts[-1] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": first_a.content},
        {"role": "user", "content": "And of Italy?"}]
    chat = ctl.app.history.load_chat(ctl.chat_id)
    assert [m.content for m in chat.messages][:3] == [first_q.content, first_a.content, "And of Italy?"]
    edited = chat.messages[2]
    assert [m.id for m in versions(chat, edited.id)] == [old_q.id, edited.id]
    user_event = [e["message"] for e in page.of("message") if e["message"]["id"] == edited.id][0]
    assert user_event["versions"]["index"] == 2 and user_event["versions"]["prev"] == old_q.id

    ctl.choose_version(old_q.id)  # back to the question as first asked, with its reply
    drawn = [m["text"] for m in page.of("chat")[-1]["messages"]]
    assert drawn == [first_q.content, first_a.content, "And of Spain?", old_a.content]
    assert ctl.app.history.load_chat(ctl.chat_id).current == old_a.id


def test_editing_the_first_question_starts_the_chat_anew(ctl: ChatController) -> None:
    ctl.send("Hello there").result(120)
    first = ctl.app.history.load_chat(ctl.chat_id).messages[0]
    ctl.edit_message(first.id, "Good morning").result(120)
    assert ctl.prompts[-1] == [{"role": "user", "content": "Good morning"}]
    chat = ctl.app.history.load_chat(ctl.chat_id)
    assert [m.content for m in versions(chat, chat.messages[0].id)] == ["Hello there", "Good morning"]


def test_reopening_a_chat_goes_on_with_its_model(ctl: ChatController, starter_model: Path) -> None:
    from desktop_helpers import wait_for

    models = ctl.app.home.models
    (models / "other").mkdir()
    (models / "other" / "same-weights.gguf").symlink_to(starter_model)
    ctl.send("Hello").result(120)
    first_model = ctl.state_event()["model"]
    assert first_model != "other/same-weights.gguf"
    chat_id = ctl.app.history.create_chat(title="Elsewhere", model="other/same-weights.gguf",
                                          source="popup", system="Answer in French.")
    ctl.open_chat(chat_id)
    wait_for(lambda: ctl.state_event()["model"] == "other/same-weights.gguf"
             and ctl.state_event()["status"] == "idle", 60, "the chat's own model loaded")
    assert ctl.app.history.load_chat(chat_id).system == "Answer in French."
    gone = ctl.app.history.create_chat(title="Gone", model="deleted-since.gguf", source="popup")
    ctl.open_chat(gone)
    assert ctl.state_event()["model"] == "other/same-weights.gguf", "a model no longer here: left as is"
