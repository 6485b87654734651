"""Defaults that cost no speed for nothing, and prompt-lookup decoding that
changes when the words come, never which words."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmm_tray.app import App
from rmm_tray.engine import Done, Engine, EngineSettings, GenParams, Token
from rmm_tray.engine.decode import NgramIndex
from rmm_tray.home.config import Config


def test_config_writes_the_fast_defaults_and_the_app_hands_them_to_the_engine(home: Path) -> None:
    (home / "config.toml").unlink()
    app = App.open()
    try:
        written = Config.load(home / "config.toml")
        assert written["generation"]["repeat_penalty"] == 1.0
        assert written["model"]["flash_attn"] == "auto"
        assert written["generation"]["speculative"] == ""
        assert app.engine_settings().flash_attn == "auto"
        params = app.gen_params()
        assert params.repeat_penalty == 1.0 and params.speculative == ""
    finally:
        app.close()


def test_a_model_can_ask_for_flash_attention_off_and_prompt_lookup(home: Path) -> None:
    (home / "models" / "m.gguf").write_bytes(b"GGUF")
    with (home / "config.toml").open("a") as fh:
        fh.write('[models."m.gguf"]\nflash_attn = "off"\nspeculative = "prompt-lookup"\n')
    app = App.open()
    try:
        model = home / "models" / "m.gguf"
        assert app.engine_settings(model).flash_attn == "off"
        assert app.gen_params(model).speculative == "prompt-lookup"
    finally:
        app.close()


def test_the_ngram_index_guesses_what_followed_the_last_match() -> None:
    index = NgramIndex([1, 2, 3, 4, 5, 9, 1, 2])
    assert index.draft(10) == [3, 4, 5, 9, 1, 2]
    index.append(3)
    assert index.draft(2) == [4, 5]
    assert NgramIndex([1, 2, 3]).draft(5) == []  # nothing repeats yet


PARAGRAPH = ("The quick brown fox jump over the lazy dogs, and then it run into the forest where many "
             "animal was living happily. They was all friends and they likes to play games together "
             "every days. ") * 3
PROMPTS = [
    f"Correct the grammar of this paragraph:\n\n{PARAGRAPH}",
    "List the numbers from one to twenty in words.",
    # Little to copy from the prompt. Identity holds up to the arithmetic: a
    # verified batch is summed in another order than one token alone, so on
    # some CPUs a near tie tips ("Tell me a story about a cat." did on one
    # build here: after 60 equal tokens, a newline against <start_of_turn>).
    "Explain why the sky is blue.",
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = Engine(EngineSettings(context_length=2048, threads=2))
    yield eng
    eng.close()


def reply(engine: Engine, model: Path, prompt: str, speculative: str) -> tuple[str, Done]:
    """A reply from a fresh context. Greedy decoding is only as repeatable as the
    arithmetic under it: llama.cpp adds up a batch of tokens in another order than
    one token alone, so a prompt decoded after a cached prefix can tip a near tie
    (seen here: two first tokens 0.13 apart in logit). Both sides start alike."""
    engine.unload().result()
    text, done = [], None
    for ev in engine.chat([{"role": "user", "content": prompt}],
                          GenParams(max_tokens=120, temperature=0.0, speculative=speculative),
                          model=model, chat_id=f"{speculative}-{hash(prompt)}"):
        if isinstance(ev, Token):
            text.append(ev.text)
        elif isinstance(ev, Done):
            done = ev
    assert done is not None
    return "".join(text), done


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS, ids=["rewrite", "count", "explain"])
def test_prompt_lookup_gives_the_same_reply_as_plain_decoding(engine: Engine, starter_model: Path,
                                                              prompt: str) -> None:
    plain, plain_done = reply(engine, starter_model, prompt, "")
    fast, fast_done = reply(engine, starter_model, prompt, "prompt-lookup")
    assert fast == plain and plain.strip()
    assert fast_done.completion_tokens == plain_done.completion_tokens


@pytest.mark.slow
def test_the_engine_opens_the_context_with_flash_attention_auto(engine: Engine,
                                                                starter_model: Path) -> None:
    import llama_cpp

    engine.load(starter_model).result()
    llama = engine._model.llama  # the context as llama.cpp was asked to make it
    assert llama.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO


@pytest.mark.slow
def test_a_later_turn_pays_only_for_its_own_question(engine: Engine, starter_model: Path) -> None:
    """After a reply the engine decodes the next turn's opening (the reply's end,
    the template's start of a user message) while the person reads, so the next
    question costs fewer new tokens than the first one did, which also paid for
    the start of the conversation."""
    engine.unload().result()
    question = "Name one colour of the rainbow."
    msgs = [{"role": "user", "content": question}]

    def turn() -> Done:
        text, done = [], None
        for ev in engine.chat(msgs, GenParams(max_tokens=16, temperature=0.0),
                              model=starter_model, chat_id="warm-next-turn"):
            if isinstance(ev, Token):
                text.append(ev.text)
            elif isinstance(ev, Done):
                done = ev
        assert done is not None
        msgs.append({"role": "assistant", "content": "".join(text)})
        return done

    first = turn()
    for _ in range(3):
        msgs.append({"role": "user", "content": question})
        later = turn()
        new_first = first.prompt_tokens - first.cached_tokens
        new_later = later.prompt_tokens - later.cached_tokens
        assert new_later < new_first, (new_later, new_first)
        assert later.cached_tokens > first.prompt_tokens
