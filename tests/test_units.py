"""Logic that needs no model: config, templates, GGUF headers, history files,
stop strings, context fitting, model names, plugin isolation."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from rmm_tray import ChatMessage, PromptTemplate, TemplateError, hookimpl
from rmm_tray.chat.templates import load_template_file
from rmm_tray.home.config import DEFAULT_CONFIG_TEXT, Config, ConfigError
from rmm_tray.hooks.host import PluginHost
from rmm_tray.models.gguf import GGUFError, quantization_from_name, read_gguf
from rmm_tray.models.store import ModelNotFound, list_models, remove_model, resolve_model
from rmm_tray.plugins.history_jsonl import JsonlHistory

# -- config ---------------------------------------------------------------------

def test_first_start_writes_commented_defaults(tmp_path: Path) -> None:
    cfg = Config.load(tmp_path / "config.toml")
    text = (tmp_path / "config.toml").read_text()
    assert text == DEFAULT_CONFIG_TEXT and text.count("#") > 10
    assert cfg["model"]["context_length"] == 4096 and cfg["history"]["backend"] == "jsonl"


def test_user_values_merge_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[generation]\ntemperature = 1\n")
    cfg = Config.load(path)
    assert cfg["generation"]["temperature"] == 1 and cfg["generation"]["top_k"] == 40


@pytest.mark.parametrize("text, expected", [
    ("[model\n", "config.toml:"),
    ("[model]\ncontext_length = 'big'\n", "model.context_length should be int"),
    ("model = 3\n", "[model] must be a table"),
])
def test_bad_config_is_one_line_and_kept(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert path.read_text() == text, "a broken config is never overwritten"


# -- templates ------------------------------------------------------------------

def test_template_fills_plain_text_only() -> None:
    t = PromptTemplate(name="t", body="Say {{ word }} about {{input}}", system="Be {{tone}}.")
    body, system = t.render({"word": "{{tone}} __import__('os')", "tone": "kind"}, "cats")
    assert body == "Say {{tone}} __import__('os') about cats"
    assert system == "Be kind."


def test_template_appends_prompt_without_input_placeholder() -> None:
    t = PromptTemplate(name="t", body="Be brief.")
    assert t.render({}, "Why is the sky blue?")[0] == "Be brief.\n\nWhy is the sky blue?"


def test_template_names_missing_variables() -> None:
    t = PromptTemplate(name="tr", body="Into {{language}}: {{input}}")
    with pytest.raises(TemplateError, match=r"needs --var language=\.\.\. and a prompt"):
        t.render({}, None)


def test_template_file(tmp_path: Path) -> None:
    path = tmp_path / "reply.toml"
    path.write_text('description = "d"\nsystem = "s"\nbody = """Hi {{name}}"""\n')
    t = load_template_file(path)
    assert (t.name, t.description, t.system, t.variables) == ("reply", "d", "s", ["name"])
    path.write_text("description = 1\n")
    with pytest.raises(TemplateError, match="needs body"):
        load_template_file(path)


# -- GGUF headers -----------------------------------------------------------------

def _gguf(path: Path, kvs: list[tuple[str, int, bytes]]) -> Path:
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, vtype, payload in kvs:
        out += struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", vtype) + payload
    path.write_bytes(out)
    return path


def _s(text: str) -> bytes:
    return struct.pack("<Q", len(text.encode())) + text.encode()


def test_gguf_header_reads_metadata_and_skips_arrays(tmp_path: Path) -> None:
    tokens = struct.pack("<IQ", 8, 3) + _s("a") + _s("b") + _s("c")
    path = _gguf(tmp_path / "m.gguf", [
        ("general.architecture", 8, _s("llama")),
        ("llama.context_length", 4, struct.pack("<I", 8192)),
        ("tokenizer.ggml.tokens", 9, tokens),
        ("general.file_type", 4, struct.pack("<I", 15)),
    ])
    info = read_gguf(path)
    assert (info.architecture, info.context_length, info.quantization) == ("llama", 8192, "Q4_K_M")
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert read_gguf(path, keep_arrays=True).metadata["tokenizer.ggml.tokens"] == ["a", "b", "c"]


@pytest.mark.parametrize("data, message", [
    (b"PK\x03\x04 zip", "not a GGUF file"),
    (b"GGUF\x03\x00\x00\x00", "truncated GGUF header"),
    (b"GGUF" + struct.pack("<IQQ", 99, 0, 0), "unsupported GGUF version 99"),
])
def test_gguf_header_errors(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError, match=message):
        read_gguf(path)


def test_quantization_from_file_name() -> None:
    assert quantization_from_name("Qwen2.5-7B-Instruct-Q4_K_M.gguf") == "Q4_K_M"
    assert quantization_from_name("model-q8_0.gguf") == "Q8_0"
    assert quantization_from_name("model.gguf") == ""


# -- model names ------------------------------------------------------------------

def test_resolve_by_path_name_and_unique_part(tmp_path: Path) -> None:
    models = tmp_path / "models"
    for name in ("qwen/Qwen2.5-7B-Q4_K_M.gguf", "gemma-3-270m-q4_k_m.gguf", "llama-3-8b.gguf"):
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).write_bytes(b"GGUF")
    assert resolve_model("gemma", models).name == "gemma-3-270m-q4_k_m.gguf"
    assert resolve_model("qwen/Qwen2.5-7B-Q4_K_M.gguf", models).parent.name == "qwen"
    with pytest.raises(ModelNotFound, match="matches 2 models"):
        resolve_model("q4_k_m", models)
    with pytest.raises(ModelNotFound, match="no model matches 'mistral'"):
        resolve_model("mistral", models)
    listed = list_models(models)
    assert [m.name for m in listed][0] == "gemma-3-270m-q4_k_m.gguf"
    assert all(m.error for m in listed), "4-byte files are reported, not fatal"


def test_removing_a_linked_model_keeps_the_original(tmp_path: Path) -> None:
    original = tmp_path / "elsewhere.gguf"
    original.write_bytes(b"GGUF")
    models = tmp_path / "models"
    models.mkdir()
    (models / "elsewhere.gguf").symlink_to(original)
    remove_model("elsewhere.gguf", models)
    assert original.exists() and not (models / "elsewhere.gguf").exists()


# -- history --------------------------------------------------------------------

def test_history_round_trip_and_corrupt_line(tmp_path: Path, caplog) -> None:
    h = JsonlHistory(tmp_path)
    cid = h.create_chat(title="Greeting", model="m.gguf")
    h.append_message(cid, ChatMessage("user", "hello"))
    reply = ChatMessage("assistant", "hi there", stats={"completion_tokens": 2})
    h.append_partial(cid, reply.id, "hi ")
    h.append_message(cid, reply)
    h.close()
    with (tmp_path / f"{cid}.jsonl").open("a") as fh:
        fh.write('{"type": "message", "role": "user", "content": "half\n')  # torn write
        fh.write(json.dumps({"type": "message", "role": "user", "content": "after"}) + "\n")
    chat = JsonlHistory(tmp_path).load_chat(cid)
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "hello"), ("assistant", "hi there"), ("user", "after")]
    assert chat.skipped_lines == 1 and "line 5 skipped" in caplog.text
    assert chat.messages[1].stats == {"completion_tokens": 2}
    assert JsonlHistory(tmp_path).list_chats()[0].title == "Greeting"


def test_history_uncompleted_reply_is_interrupted(tmp_path: Path) -> None:
    h = JsonlHistory(tmp_path)
    cid = h.create_chat(title="t", model=None)
    h.append_message(cid, ChatMessage("user", "tell me"))
    h.append_partial(cid, "r1", "Once upon ")
    h.append_partial(cid, "r1", "a time")
    chat = h.load_chat(cid)
    assert chat.messages[-1].content == "Once upon a time" and chat.messages[-1].interrupted


def test_history_rejects_path_like_ids(tmp_path: Path) -> None:
    history = JsonlHistory(tmp_path)
    chat_id = history.create_chat(title="t", model=None)
    for bad in ("../../etc/passwd", chat_id + "\n"):
        with pytest.raises(KeyError, match="not a chat id"):
            history.load_chat(bad)


# -- engine helpers (no model) ------------------------------------------------------

def test_stop_scanner_holds_back_partial_stop_strings() -> None:
    from rmm_tray.engine.generation import StopScanner

    s = StopScanner(["<end_of_turn>"])
    assert s.feed("Hello <end") == ("Hello ", False)
    assert s.feed("_of") == ("", False)
    assert s.feed("_turn> more") == ("", True)
    s = StopScanner(["<end_of_turn>"])
    assert s.feed("a <e") == ("a ", False)
    assert s.feed("x") == ("<ex", False)


def test_fit_messages_drops_oldest_turns_but_keeps_system() -> None:
    from rmm_tray.engine.generation import fit_messages
    from rmm_tray.engine.types import EngineError

    msgs = [{"role": "system", "content": "s"}] + [
        {"role": r, "content": "x" * 10} for r in ("user", "assistant") * 3]
    msgs.append({"role": "user", "content": "last"})

    def count(m):
        return sum(len(x["content"]) for x in m)

    fitted = fit_messages(msgs, count, 30)
    assert fitted[0]["role"] == "system" and fitted[-1]["content"] == "last"
    assert fitted[1]["role"] == "user" and count(fitted) <= 30
    with pytest.raises(EngineError, match="longer than the context"):
        fit_messages([{"role": "user", "content": "x" * 100}], count, 10)


def test_fit_messages_of_a_long_chat_counts_a_few_times_not_once_per_message() -> None:
    from rmm_tray.engine.generation import fit_messages

    msgs = [{"role": "system", "content": "s"}]
    for i in range(1000):
        msgs += [{"role": "user", "content": f"q{i} " * 5}, {"role": "assistant", "content": "a " * 20}]
    calls: list[int] = []

    def count(m):
        calls.append(len(m))
        return sum(len(x["content"]) for x in m)

    fitted = fit_messages(msgs, count, 500)
    counted = list(calls)
    assert fitted[0]["role"] == "system" and fitted[1]["role"] == "user"
    assert fitted[-1] == msgs[-1] and count(fitted) <= 500
    # The earliest start that fits: one more exchange would not.
    start = msgs.index(fitted[1])
    assert count([msgs[0], *msgs[start - 2:]]) > 500
    assert len(counted) <= 16 and sum(counted) < 3 * len(msgs), counted

    # With a lower bound per message, the walk from the newest one stops where no
    # earlier start can fit: the long history is never counted whole.
    calls.clear()
    bounded = fit_messages(msgs, count, 500, lower_bound=lambda m: len(m["content"]))
    assert bounded == fitted
    assert max(calls) < 60 and len(calls) <= 8, calls


# -- plugin isolation ---------------------------------------------------------------

class GoodPlugin:
    @hookimpl
    def register_prompt_templates(self, register):
        register(PromptTemplate(name="good", body="ok"))

    @hookimpl
    def before_send(self, draft):
        draft.text += "!"


class BadPlugin:
    @hookimpl
    def register_prompt_templates(self, register):
        register(PromptTemplate(name="half", body="registered before the crash"))
        raise RuntimeError("exploded")

    @hookimpl
    def before_send(self, draft):
        raise ValueError("nope")


class WrongSignature:
    @hookimpl
    def register_prompt_templates(self, register, nonsense):
        pass


def test_one_plugin_failing_costs_only_itself() -> None:
    from rmm_tray.chat.drafts import MessageDraft

    host = PluginHost()
    host.register(GoodPlugin(), "good")
    host.register(BadPlugin(), "bad")
    host.register(WrongSignature(), "wrong")
    found = host.collect("register_prompt_templates", lambda o: True, "template", app=None)
    assert [t.name for _, t in found] == ["good"]
    draft = MessageDraft(text="hi", chat_id="c", role="user")
    host.call_each("before_send", draft=draft, app=None)
    assert draft.text == "hi!"
    assert "RuntimeError: exploded" in host.infos["bad"].error
    assert "invalid plugin" in host.infos["wrong"].error
    assert host.infos["good"].error is None


def test_register_rejects_wrong_objects() -> None:
    class Sloppy:
        @hookimpl
        def register_prompt_templates(self, register):
            register("not a template")

    host = PluginHost()
    host.register(Sloppy(), "sloppy")
    assert host.collect("register_prompt_templates", lambda o: isinstance(o, PromptTemplate),
                        "PromptTemplate") == []
    assert "expects a PromptTemplate" in host.infos["sloppy"].error


def test_chat_stream_hands_tokens_over_in_batches() -> None:
    import threading

    from rmm_tray.engine import ChatStream, Done, Token

    stream = ChatStream()

    def produce() -> None:
        for i in range(200):
            stream._put(Token(str(i)))
        stream._put(Done("m", 1, 0, 200, 0.1, 10.0, 100.0, "length"))
        stream._close()

    threading.Thread(target=produce).start()
    batches = list(stream.batches())
    events = [e for b in batches for e in b]
    assert [e.text for e in events[:-1]] == [str(i) for i in range(200)]
    assert isinstance(events[-1], Done)
    assert len(batches) < 50, "a burst of tokens arrives in a few batches, not 200 wake-ups"
