"""The local API's logic against a stand-in engine: request checks, error bodies,
the key, the body limit, the queue bound, SSE shapes, saved chats. The real
server on the real model is tests/test_server_api.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import REPO
from rmm_tray.app import App
from rmm_tray.engine import Done, EngineStatus, Failed, Token
from rmm_tray.home.config import Config, ConfigError
from rmm_tray.home.paths import DataHome
from rmm_tray.server.app import build_app
from rmm_tray.server.engine_link import Gate
from rmm_tray.server.errors import ApiError
from rmm_tray.server.run import bind
from rmm_tray.server.settings import ServerError, ServerSettings, check_bind, is_loopback

MODEL = "tiny-chat.gguf"


def tiny_gguf(path: Path, arch: str = "llama") -> Path:
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_context_length(2048)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class FakeStream:
    def __init__(self, pieces: list[str], release: threading.Event | None, fail: str | None) -> None:
        self.pieces, self.release, self.fail = pieces, release, fail
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def batches(self):  # type: ignore[no-untyped-def]
        if self.release is not None:
            self.release.wait(10)
        if self.fail:
            yield [Failed(self.fail)]
            return
        sent = 0
        for piece in self.pieces:
            if self.cancelled:
                break
            sent += 1
            yield [Token(piece)]
        yield [Done(MODEL, prompt_tokens=12, cached_tokens=5, completion_tokens=sent, ttft_s=0.01,
                    prompt_tok_s=700.0, decode_tok_s=50.0,
                    stop_reason="cancelled" if self.cancelled else "stop")]


class FakeEngine:
    """Engine.chat's contract: a stream of Token batches, then Done (or Failed)."""

    loaded = None

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.pieces = ["Hello", " there", "!"]
        self.release: threading.Event | None = None
        self.fail: str | None = None

    def chat(self, messages, params, *, model=None, chat_id=None, raw=False,  # type: ignore[no-untyped-def]
             warm_next_turn=True):
        self.calls.append({"messages": messages, "params": params, "model": model,
                           "chat_id": chat_id, "raw": raw, "warm_next_turn": warm_next_turn})
        return FakeStream(self.pieces, self.release, self.fail)

    def status(self) -> EngineStatus:
        return EngineStatus("idle", None)

    def close(self) -> None:
        pass


@pytest.fixture()
def core(home: Path) -> App:
    tiny_gguf(home / "models" / MODEL)
    tiny_gguf(home / "models" / "other" / "second-model.gguf")
    app = App(DataHome(home).ensure(), Config.load(home / "config.toml"))
    app._engine = FakeEngine()  # type: ignore[assignment]
    return app


def client(core: App, **settings: Any) -> TestClient:
    return TestClient(build_app(core, ServerSettings(**settings)))


def chat(messages: Any = None, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages or [{"role": "user", "content": "Hi"}], **extra}


def sse_data(text: str) -> list[Any]:
    out = []
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[len("data: "):]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


# -- requests and their errors ----------------------------------------------------


def test_models_lists_every_local_model(core: App) -> None:
    r = client(core).get("/v1/models")
    assert r.status_code == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert ids == sorted(ids) or set(ids) == {MODEL, "other/second-model.gguf"}
    assert set(ids) == {MODEL, "other/second-model.gguf"}
    assert all(m["object"] == "model" and m["loaded"] is False for m in r.json()["data"])
    assert client(core).get("/v1/models/other/second-model.gguf").json()["id"] == "other/second-model.gguf"


def test_a_chat_reply_with_usage(core: App) -> None:
    r = client(core).post("/v1/chat/completions", json=chat())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there!"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                             "prompt_tokens_details": {"cached_tokens": 5}}
    assert body["model"] == MODEL
    # A program may send its next request at once: no warm-up for it to wait behind.
    assert core.engine.calls[-1]["warm_next_turn"] is False


def test_the_model_is_found_by_the_names_the_cli_takes(core: App) -> None:
    engine = core.engine
    client(core).post("/v1/chat/completions", json=chat(model="second"))
    assert engine.calls[-1]["model"] == core.home.models / "other" / "second-model.gguf"


def test_sampling_fields_reach_the_engine(core: App) -> None:
    client(core).post("/v1/chat/completions", json=chat(
        temperature=0, top_p=0.5, top_k=7, min_p=0.1, repeat_penalty=1.1, seed=42,
        max_completion_tokens=9, stop=["\n\n", "END"], user="someone", unknown_field={"x": 1}))
    params = core.engine.calls[-1]["params"]
    assert (params.temperature, params.top_p, params.top_k, params.min_p) == (0.0, 0.5, 7, 0.1)
    assert (params.repeat_penalty, params.seed, params.max_tokens) == (1.1, 42, 9)
    assert params.stop == ("\n\n", "END")
    client(core).post("/v1/chat/completions", json=chat(stop="###", max_tokens=5))
    params = core.engine.calls[-1]["params"]
    assert params.stop == ("###",) and params.max_tokens == 5


def test_content_parts_and_developer_role(core: App) -> None:
    client(core).post("/v1/chat/completions", json=chat([
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "you"}]}]))
    assert core.engine.calls[-1]["messages"] == [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "Hi you"}]


@pytest.mark.parametrize("extra, param", [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
])
def test_features_the_engine_cannot_honour_are_refused(core: App, extra: dict, param: str) -> None:
    r = client(core).post("/v1/chat/completions", json=chat(**extra))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert "not supported" in error["message"]
    assert core.engine.calls == []


def test_what_honours_the_default_is_accepted(core: App) -> None:
    r = client(core).post("/v1/chat/completions", json=chat(
        n=1, tools=[], response_format={"type": "text"}, presence_penalty=0, logprobs=False))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("body, param", [
    ({"model": MODEL, "messages": "hi"}, "messages"),
    ({"model": MODEL, "messages": []}, "messages"),
    ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages"),
    (chat(temperature="hot"), "temperature"),
    (chat(temperature=-1), "temperature"),
    (chat(max_tokens=0), "max_tokens"),
    (chat(max_tokens=True), "max_tokens"),
    (chat(stop=[1, 2]), "stop"),
    (chat(stream="yes"), "stream"),
    ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
])
def test_wrong_types_get_a_400_naming_the_field(core: App, body: dict, param: str) -> None:
    r = client(core).post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert "Traceback" not in r.text


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_json_is_a_400_not_a_traceback(core: App, raw: bytes) -> None:
    r = client(core).post("/v1/chat/completions", content=raw,
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "JSON" in r.json()["error"]["message"]


def test_an_unknown_model_is_a_404_listing_what_exists(core: App) -> None:
    r = client(core).post("/v1/chat/completions", json=chat(model="gpt-4o"))
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "model_not_found"
    assert "gpt-4o" in error["message"] and MODEL in error["message"]
    assert "other/second-model.gguf" in error["message"]


def test_a_path_outside_models_is_not_a_model(core: App, tmp_path: Path) -> None:
    outside = tiny_gguf(tmp_path / "elsewhere" / "secret.gguf")
    r = client(core).post("/v1/chat/completions", json=chat(model=str(outside)))
    assert r.status_code == 404
    assert core.engine.calls == []


def test_an_unknown_endpoint_is_json(core: App) -> None:
    r = client(core).get("/v1/nothing")
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]["message"]
    r = client(core).get("/v1/chat/completions")
    assert r.status_code == 405


def test_an_engine_failure_is_one_line(core: App) -> None:
    core.engine.fail = "the message is longer than the context (900 > 800 tokens)"
    r = client(core).post("/v1/chat/completions", json=chat())
    assert r.status_code == 500
    assert r.json()["error"]["message"] == core.engine.fail


# -- streaming -------------------------------------------------------------------


def test_chat_stream_shape(core: App) -> None:
    with client(core).stream("POST", "/v1/chat/completions",
                             json=chat(stream=True, stream_options={"include_usage": True})) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_data(r.read().decode())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello there!"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert len({c["id"] for c in chunks}) == 1


def test_no_usage_chunk_unless_asked(core: App) -> None:
    with client(core).stream("POST", "/v1/chat/completions", json=chat(stream=True)) as r:
        events = sse_data(r.read().decode())
    assert all(e == "[DONE]" or e["choices"] for e in events)


def test_a_failure_mid_stream_is_an_error_event(core: App) -> None:
    core.engine.fail = "llama.cpp could not decode"
    with client(core).stream("POST", "/v1/chat/completions", json=chat(stream=True)) as r:
        events = sse_data(r.read().decode())
    assert events[-2]["error"]["message"] == "llama.cpp could not decode"
    assert events[-1] == "[DONE]"


def test_completions_are_raw_prompts(core: App) -> None:
    r = client(core).post("/v1/completions", json={"model": MODEL, "prompt": "Once upon"})
    assert r.status_code == 200
    assert r.json()["choices"][0]["text"] == "Hello there!"
    call = core.engine.calls[-1]
    assert call["raw"] is True and call["messages"] == [{"role": "user", "content": "Once upon"}]
    with client(core).stream("POST", "/v1/completions",
                             json={"model": MODEL, "prompt": ["Once"], "stream": True}) as r:
        events = sse_data(r.read().decode())
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == "Hello there!"
    r = client(core).post("/v1/completions", json={"model": MODEL, "prompt": ["a", "b"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


# -- Anthropic ---------------------------------------------------------------------


def test_messages_reply_and_errors_in_anthropic_shape(core: App) -> None:
    body = {"model": MODEL, "max_tokens": 20, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "stop_sequences": ["\n"]}
    r = client(core).post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["type"] == "message" and reply["content"] == [{"type": "text", "text": "Hello there!"}]
    assert reply["stop_reason"] == "end_turn"
    assert reply["usage"]["output_tokens"] == 3 and reply["usage"]["cache_read_input_tokens"] == 5
    call = core.engine.calls[-1]
    assert call["messages"][0] == {"role": "system", "content": "Be brief."}
    assert call["params"].stop == ("\n",) and call["params"].max_tokens == 20
    r = client(core).post("/v1/messages", json={"model": MODEL, "messages": body["messages"]})
    assert r.status_code == 400
    assert r.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": "max_tokens is required"}}


def test_messages_stream_events(core: App) -> None:
    body = {"model": MODEL, "max_tokens": 20, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}
    with client(core).stream("POST", "/v1/messages", json=body) as r:
        raw = r.read().decode()
    names = [line[len("event: "):] for line in raw.splitlines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [d for d in sse_data(raw) if d["type"] == "content_block_delta"]
    assert "".join(d["delta"]["text"] for d in deltas) == "Hello there!"


# -- security and limits -------------------------------------------------------------


def test_loopback_only_without_a_key() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("myhost")
    check_bind(ServerSettings(host="127.0.0.1"))
    with pytest.raises(ServerError, match="without an API key.*api_key"):
        check_bind(ServerSettings(host="0.0.0.0"))
    check_bind(ServerSettings(host="0.0.0.0", api_key="s3cret"))


def test_the_key_is_required_when_set(core: App) -> None:
    c = client(core, api_key="s3cret")
    assert c.get("/v1/models").status_code == 401
    assert c.get("/health").status_code == 401
    assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = c.post("/v1/messages", json={}, headers={"x-api-key": "nope"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/v1/models", headers={"x-api-key": "s3cret"}).status_code == 200


def test_bodies_over_the_limit_are_refused(core: App) -> None:
    c = client(core, max_body_bytes=2048)
    r = c.post("/v1/chat/completions", json=chat([{"role": "user", "content": "x" * 5000}]))
    assert r.status_code == 413
    assert "2048 bytes" in r.json()["error"]["message"]
    # Without a Content-Length (chunked), the limit holds as the body arrives.
    r = c.post("/v1/chat/completions", content=iter([b'{"messages": "', b"x" * 4096, b'"}']))
    assert r.status_code == 413
    assert core.engine.calls == []


def test_beyond_the_queue_bound_a_503_with_retry_after(core: App) -> None:
    app = build_app(core, ServerSettings(max_waiting=1))
    gate: Gate = app.state.api.gate
    gate.active = gate.limit  # one generating, one waiting
    r = TestClient(app).post("/v1/chat/completions", json=chat())
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "server_busy"
    gate.active = 0
    assert TestClient(app).post("/v1/chat/completions", json=chat()).status_code == 200
    assert gate.active == 0, "a finished reply frees its place"


def test_gate_counts_each_request_once() -> None:
    gate = Gate(max_waiting=2)
    for _ in range(3):
        gate.enter()
    with pytest.raises(ApiError) as caught:
        gate.enter()
    assert caught.value.status == 503
    gate.leave()
    gate.enter()


def test_no_cors_headers_unless_origins_are_listed(core: App) -> None:
    headers = {"Origin": "http://localhost:3000"}
    assert "access-control-allow-origin" not in client(core).get("/v1/models", headers=headers).headers
    c = client(core, cors_origins=("http://localhost:3000",))
    r = c.get("/v1/models", headers=headers)
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    r = c.get("/v1/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_a_port_in_use_is_one_line() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(ServerError) as caught:
            bind(ServerSettings(port=taken.getsockname()[1]))
        message = str(caught.value)
        assert "already in use" in message and "--port" in message and "\n" not in message
    finally:
        taken.close()


@pytest.mark.parametrize("line, words", [
    ("port = 0", "API port"), ("port = 70000", "port"), ('host = ""', "address"),
    ('cors_origins = ["ftp://x"]', "origins"), ("max_body_bytes = 10", "1024"),
    ("max_waiting = -1", "0 or more"), ('api_key = " padded "', "spaces"), ("save_chats = 1", "bool"),
])
def test_server_settings_are_checked(tmp_path: Path, line: str, words: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[server]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        Config.load(path)
    assert "server" in str(caught.value) and words.split()[-1].lower() in str(caught.value).lower()


def test_the_cli_starts_without_the_web_stack() -> None:
    code = ("import sys; from rmm_tray.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('starlette', 'uvicorn', 'rmm_tray.server') or m.startswith('rmm_tray.server')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


# -- saved chats ----------------------------------------------------------------------


def test_api_chats_are_saved_only_when_asked(core: App) -> None:
    client(core).post("/v1/chat/completions", json=chat())
    assert core.history.list_chats() == []


def test_a_resent_conversation_continues_its_saved_chat(core: App) -> None:
    from rmm_tray.server.engine_link import ChatRecorder, Job

    recorder = ChatRecorder(core)
    params = core.gen_params()
    first = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    path = core.home.models / MODEL
    chat_id = recorder.record(Job(first, params, path, MODEL), "Hello!", None, False)
    second = [*first, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "More?"}]
    assert recorder.record(Job(second, params, path, MODEL), "Sure.", None, True) == chat_id
    stored = core.history.load_chat(chat_id)
    assert [(m.role, m.content) for m in stored.messages] == [
        ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "More?"),
        ("assistant", "Sure.")]
    assert stored.messages[-1].interrupted and stored.source == "api"
    other = [{"role": "user", "content": "A new topic"}]
    assert recorder.record(Job(other, params, path, MODEL), "Ok", None, False) != chat_id
