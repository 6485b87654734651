"""A chat's system prompt, edited for that chat: stored with it, the next turn's
prompt (as the engine tokenizes it) has the new one and not the old, and a chat
reopened shows it again. Real model through the popup's controller; the header
itself under Xvfb in test_chat_system_desktop.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Page
from rmm_tray.chat.history import ChatMessage
from rmm_tray.desktop.chat_controller import chat_system
from rmm_tray.engine import generation


@pytest.fixture()
def prompts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    tokenize = generation.tokenize_prompt

    def recording(llama, prompt, bos_text):  # type: ignore[no-untyped-def]
        seen.append(prompt)
        return tokenize(llama, prompt, bos_text)

    monkeypatch.setattr(generation, "tokenize_prompt", recording)
    return seen


def opening(system: str | None, first: str) -> str:
    """How the starter model's template opens a chat whose first question is ``first``."""
    return "<bos><start_of_turn>user\n" + (f"{system}\n\n" if system else "") + first + "<end_of_turn>\n"


def replied(page: Page, n: int) -> None:
    from desktop_helpers import wait_for

    wait_for(lambda: len([e for e in page.of("message") if e["message"]["role"] == "assistant"
                          and not e["message"]["streaming"]]) >= n, 120, f"reply {n}")


@pytest.mark.slow
def test_an_edited_system_prompt_is_what_the_next_turn_reads(
        home_with_model: Path, prompts: list[str]) -> None:
    from rmm_tray.app import App
    from rmm_tray.desktop.chat_controller import ChatController

    app = App.open()
    try:
        page = Page()
        chat = ChatController(app, page)
        chat.set_system("You are a pirate.")  # before the chat exists: its first turn uses it
        assert page.last("chat_system")["text"] == "You are a pirate."
        chat.send("Hello").result(120)
        replied(page, 1)
        assert prompts[0].startswith(opening("You are a pirate.", "Hello"))
        chat_id = chat.chat_id
        assert chat_id is not None and app.history.load_chat(chat_id).system == "You are a pirate."

        chat.set_system("  Answer in French.  ")
        assert app.history.load_chat(chat_id).system == "Answer in French."
        prompts.clear()
        chat.send("How are you?").result(120)
        replied(page, 2)
        # The system prompt opens the prompt in place of the old one (Gemma puts it
        # at the head of the first user turn); the rest of the chat is as it was.
        assert prompts[0].startswith(opening("Answer in French.", "Hello"))
        assert prompts[0].endswith("<start_of_turn>user\nHow are you?<end_of_turn>\n"
                                   "<start_of_turn>model\n")

        # Reopened (a restarted popup): the header shows it, and it still holds.
        page2 = Page()
        again = ChatController(app, page2)
        again.open_chat(chat_id)
        assert page2.last("chat_system") == {"type": "chat_system", "chat_id": chat_id,
                                             "text": "Answer in French."}
        prompts.clear()
        again.send("And tomorrow?").result(120)
        replied(page2, 1)
        assert prompts[0].startswith(opening("Answer in French.", "Hello"))

        again.set_system("")  # none at all
        prompts.clear()
        again.send("Bye").result(120)
        replied(page2, 2)
        assert prompts[0].startswith(opening(None, "Hello"))
    finally:
        app.close()


def test_the_header_shows_the_field_else_the_stored_system_message(home: Path) -> None:
    from rmm_tray.app import App

    app = App.open()
    try:
        h = app.history
        old = h.create_chat(title="old", model=None)
        h.append_message(old, ChatMessage("system", "Be brief."))
        h.append_message(old, ChatMessage("user", "Hi"))
        assert chat_system(h.load_chat(old)) == "Be brief."
        h.update_chat(old, system="Be long.")
        assert chat_system(h.load_chat(old)) == "Be long."
        h.update_chat(old, system="")
        assert chat_system(h.load_chat(old)) == ""
    finally:
        app.close()
