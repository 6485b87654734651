"""The engine on the real starter model, in process: cancel, switch, unload,
KV reuse, and bad model files that must not take the engine down."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from conftest import copy_model
from rmm_tray.engine import Done, Engine, EngineError, EngineSettings, Failed, GenParams, Token

GREEDY = GenParams(max_tokens=16, temperature=0.0)


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = Engine(EngineSettings(context_length=1024))
    yield eng
    eng.close()


def events_of(stream) -> tuple[str, Done | None, Failed | None]:
    text, done, failed = [], None, None
    for ev in stream:
        if isinstance(ev, Token):
            text.append(ev.text)
        elif isinstance(ev, Done):
            done = ev
        elif isinstance(ev, Failed):
            failed = ev
    return "".join(text), done, failed


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.slow
def test_lazy_load_on_first_chat(engine: Engine, starter_model: Path) -> None:
    engine.unload().result()
    assert engine.status().model is None
    engine.default_model = starter_model
    text, done, failed = events_of(engine.chat(user("Hello"), GREEDY))
    assert failed is None and done is not None and text
    assert engine.status().model == starter_model
    assert engine.status().state == "idle"
    assert engine.loaded.chat_template == "gemma"  # the starter model has no template


@pytest.mark.slow
def test_cancel_mid_stream(engine: Engine, starter_model: Path) -> None:
    stream = engine.chat(user("Write a very long story."), GenParams(max_tokens=400),
                         model=starter_model)
    seen = 0
    done = None
    for ev in stream:
        if isinstance(ev, Token):
            seen += 1
            if seen == 3:
                stream.cancel()
        elif isinstance(ev, Done):
            done = ev
    assert done is not None and done.stop_reason == "cancelled"
    assert done.completion_tokens <= 4
    # The engine is free again at once.
    text, done, _ = events_of(engine.chat(user("Hi"), GREEDY, model=starter_model))
    assert done is not None and done.stop_reason != "cancelled"


@pytest.mark.slow
def test_switch_models_and_unload(engine: Engine, starter_model: Path, tmp_path: Path) -> None:
    other = copy_model(starter_model, tmp_path / "second-model-q4_k_m.gguf")
    engine.load(starter_model).result()
    _, done_a, _ = events_of(engine.chat(user("Hello"), GREEDY))
    assert done_a.model == starter_model.name

    loaded = engine.load(other).result()
    assert loaded.path == other and engine.status().model == other
    _, done_b, _ = events_of(engine.chat(user("Hello"), GREEDY))
    assert done_b.model == other.name

    # A chat naming a model switches to it.
    _, done_c, _ = events_of(engine.chat(user("Hello"), GREEDY, model=starter_model))
    assert done_c.model == starter_model.name and engine.status().model == starter_model

    engine.unload().result()
    assert engine.status().model is None and engine.loaded is None


@pytest.mark.slow
def test_next_turn_reuses_the_kv_prefix(engine: Engine, starter_model: Path) -> None:
    engine.load(starter_model).result()
    msgs = user("My name is Ada. Remember it.")
    reply, first, _ = events_of(engine.chat(msgs, GREEDY, chat_id="kv-a"))
    msgs += [{"role": "assistant", "content": reply}, {"role": "user", "content": "What is my name?"}]
    _, second, _ = events_of(engine.chat(msgs, GREEDY, chat_id="kv-a"))
    assert second.cached_tokens >= first.prompt_tokens - 1
    assert second.prompt_tokens - second.cached_tokens < second.prompt_tokens / 2


@pytest.mark.slow
def test_returning_to_a_chat_restores_its_state(engine: Engine, starter_model: Path) -> None:
    engine.load(starter_model).result()
    long_text = "The quick brown fox jumps over the lazy dog. " * 20
    a = user(long_text)
    reply_a, _, _ = events_of(engine.chat(a, GREEDY, chat_id="state-a"))
    b = user("Something entirely different about cooking pasta.")
    events_of(engine.chat(b, GREEDY, chat_id="state-b"))
    a += [{"role": "assistant", "content": reply_a}, {"role": "user", "content": "Again?"}]
    _, back, _ = events_of(engine.chat(a, GREEDY, chat_id="state-a"))
    assert back.cached_tokens > 200, "chat A's history came back from the state cache"


def _gguf_with_arch(path: Path, arch: str) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def broken_models(tmp: Path, good: Path) -> dict[str, tuple[Path, str]]:
    text = tmp / "notes.gguf"
    text.write_text("this is not a model\n")
    empty = tmp / "empty.gguf"
    empty.write_bytes(b"")
    truncated = tmp / "truncated.gguf"
    with good.open("rb") as src:
        truncated.write_bytes(src.read(8 << 20))
    header_cut = tmp / "header-cut.gguf"
    with good.open("rb") as src:
        header_cut.write_bytes(src.read(300))
    huge = tmp / "huge.gguf"
    with good.open("rb") as src, huge.open("wb") as dst:
        dst.write(src.read(1 << 20))
    # Sparse: twice this machine's memory, on almost no disk.
    os.truncate(huge, psutil.virtual_memory().total * 2)
    return {
        "not gguf": (text, "not a GGUF file"),
        "empty": (empty, "not a GGUF file"),
        "truncated": (truncated, "truncated.gguf:"),
        "header cut": (header_cut, "truncated GGUF header"),
        "unknown architecture": (_gguf_with_arch(tmp / "alien.gguf", "nonesuch"),
                                 "unknown model architecture"),
        "larger than memory": (huge, "of memory but only"),
        "missing": (tmp / "gone.gguf", "model file not found"),
    }


@pytest.mark.slow
def test_bad_model_files_give_one_line_and_the_engine_lives_on(
    tmp_path: Path, starter_model: Path
) -> None:
    eng = Engine(EngineSettings(context_length=512, gpu_layers=0))
    try:
        for label, (path, expected) in broken_models(tmp_path, starter_model).items():
            with pytest.raises(EngineError) as err:
                eng.load(path).result(timeout=60)
            message = str(err.value)
            assert expected in message, f"{label}: {message}"
            assert "\n" not in message, label
            assert eng.status().model is None
            # The same through a chat: an error event, not an exception.
            _, _, failed = events_of(eng.chat(user("hi"), GREEDY, model=path))
            assert failed is not None and expected in failed.message, label
        text, done, failed = events_of(eng.chat(user("Hello"), GREEDY, model=starter_model))
        assert failed is None and done is not None and text
    finally:
        eng.close()


@pytest.mark.slow
def test_failed_switch_keeps_the_previous_model(tmp_path: Path, starter_model: Path) -> None:
    eng = Engine(EngineSettings(context_length=512))
    try:
        eng.load(starter_model).result()
        bad = broken_models(tmp_path, starter_model)
        for label in ("not gguf", "truncated", "unknown architecture"):
            with pytest.raises(EngineError):
                eng.load(bad[label][0]).result()
            assert bad[label][1] in eng.status().error, label
            assert eng.status().model == starter_model, label
            # A chat without a model named goes to the model still loaded.
            _, done, failed = events_of(eng.chat(user("Hello"), GREEDY))
            assert failed is None and done.model == starter_model.name, label
    finally:
        eng.close()


def test_context_gpu_and_threads_follow_config_and_hardware(monkeypatch) -> None:
    import llama_cpp

    from rmm_tray.engine import loader

    assert loader.context_for(100_000, 32_768) == 32_768
    assert loader.context_for(4096, 32_768) == 4096
    assert loader.context_for(4096, None) == 4096
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    assert loader.gpu_layers_for(EngineSettings()) == -1
    assert loader.gpu_layers_for(EngineSettings(gpu_layers=10)) == 10
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    assert loader.gpu_layers_for(EngineSettings()) == 0
    assert loader.physical_cores() == psutil.cpu_count(logical=False)


@pytest.mark.slow
def test_llama_cpp_log_goes_to_python_logging(starter_model: Path, caplog) -> None:
    import logging

    eng = Engine(EngineSettings(context_length=512, threads=1))
    try:
        with caplog.at_level(logging.DEBUG, logger="rmm_tray.llama_cpp"):
            loaded = eng.load(starter_model).result()
        assert loaded.n_ctx == 512 and loaded.threads == 1
        lines = [r.getMessage() for r in caplog.records if r.name == "rmm_tray.llama_cpp"]
        assert any("llama_model_loader" in line or "print_info" in line for line in lines)
    finally:
        eng.close()


@pytest.mark.slow
def test_continuing_a_2000_message_chat_cuts_the_oldest_turns(engine: Engine, starter_model: Path) -> None:
    engine.load(starter_model).result()
    history = [{"role": "system", "content": "You are terse."}]
    for i in range(1000):
        history += [{"role": "user", "content": f"Question {i}: what is {i} plus one?"},
                    {"role": "assistant", "content": f"It is {i + 1}."}]
    history.append({"role": "user", "content": "And the last one?"})
    text, done, failed = events_of(engine.chat(history, GREEDY, model=starter_model, chat_id="long"))
    assert failed is None and done is not None and text.strip()
    # Only the newest turns fit in a 1,024-token context; the system message stays.
    assert done.prompt_tokens <= 1024 - GREEDY.max_tokens
    assert 100 < done.prompt_tokens
