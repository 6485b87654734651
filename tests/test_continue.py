"""Continue: a reply cut off at the token limit grows, in the same message, from
where it stopped, and the next turn follows the whole of it. With the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmm_tray.engine import generation

QUESTION = "Name the planets of the solar system, one per line, with a fact about each."


@pytest.fixture()
def prompts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every prompt the engine tokenizes, in order."""
    seen: list[str] = []
    tokenize = generation.tokenize_prompt

    def recording(llama, prompt, bos_text):  # type: ignore[no-untyped-def]
        seen.append(prompt)
        return tokenize(llama, prompt, bos_text)

    monkeypatch.setattr(generation, "tokenize_prompt", recording)
    return seen


@pytest.mark.slow
def test_continue_grows_the_same_reply_from_where_it_stopped(
        home_with_model: Path, prompts: list[str]) -> None:
    from rmm_tray.app import App
    from rmm_tray.chat.turn import Turn

    app = App.open()
    try:
        first = Turn(app, QUESTION, app.gen_params(max_tokens=8))
        for _ in first:
            pass
        assert first.result.error is None and first.result.reply is not None
        cut = first.result.reply
        assert cut.stats is not None and cut.stats["stop_reason"] == "length"
        said = first.text
        assert said and cut.content == said

        prompts.clear()
        more = Turn(app, "", app.gen_params(max_tokens=8), chat_id=first.chat_id,
                    continue_id=cut.id)
        for _ in more:
            pass
        assert more.result.error is None and more.result.reply is not None
        # Engine-side: the continuation was decoded after the reply's own text, in
        # the assistant's open turn (nothing closes it).
        decoded = prompts[0]
        assert decoded.endswith("<start_of_turn>model\n" + said), decoded[-200:]
        assert decoded.count(QUESTION) == 1
        stats = more.result.reply.stats
        assert stats is not None and stats["cached_tokens"] > 0  # the KV prefix held it
        grown = more.text
        assert grown.startswith(said) and len(grown) > len(said)

        chat = app.history.load_chat(first.chat_id)
        replies = [m for m in chat.tree if m.role == "assistant"]
        assert [m.id for m in replies] == [cut.id]  # the same message, not a version
        assert replies[0].content == grown and not replies[0].interrupted

        prompts.clear()
        nxt = Turn(app, "Which one is the largest?", app.gen_params(max_tokens=4),
                   chat_id=first.chat_id)
        for _ in nxt:
            pass
        assert ("<start_of_turn>model\n" + grown.strip() + "<end_of_turn>") in prompts[0]
    finally:
        app.close()


@pytest.mark.slow
def test_only_a_reply_can_be_continued(home_with_model: Path) -> None:
    from rmm_tray.app import App
    from rmm_tray.chat.turn import Turn

    app = App.open()
    try:
        first = Turn(app, "Hi", app.gen_params(max_tokens=2))
        for _ in first:
            pass
        with pytest.raises(ValueError, match="no reply"):
            Turn(app, "", app.gen_params(), chat_id=first.chat_id, continue_id=first.user.id)
        assert len(app.history.load_chat(first.chat_id).tree) == 2  # nothing stored
    finally:
        app.close()
