"""The local API as clients use it: a real `rmm-tray serve` on loopback with the
starter model, driven by the official openai and anthropic SDKs and by curl."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from conftest import CLI, REPO

pytestmark = pytest.mark.integration

CONFIG = """\
[model]
context_length = 2048
[generation]
temperature = 0.0
max_tokens = 24
[server]
max_waiting = 7
save_chats = true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, root: Path, port: int, proc: subprocess.Popen[str]) -> None:
        self.root, self.port, self.proc = root, port, proc
        self.base = f"http://127.0.0.1:{port}"
        self.url = self.base + "/v1"

    def health(self) -> dict:
        return httpx.get(self.base + "/health", timeout=10).json()


def make_home(root: Path, starter: Path | None, config: str = CONFIG) -> Path:
    for sub in ("models", "plugins", "prompts", "chats", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(config)
    if starter is not None:
        (root / "models" / starter.name).symlink_to(starter)
    else:  # as after `models rm` of the starter: no 253 MB copy on first start
        (root / "state.json").write_text('{"starter_installed": "gemma-3-270m-q4_k_m.gguf"}\n')
    return root


def start(root: Path, *args: str, port: int | None = None, wait: bool = True) -> Served:
    port = port or free_port()
    env = {**os.environ, "RMM_HOME": str(root)}
    env.pop("RMM_PLUGINS", None)
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = Served(root, port, proc)
    if wait:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if "--host" in args:  # no model there; with a key, a 401 says it is up
                    if httpx.get(served.base + "/health", timeout=10).status_code in (200, 401):
                        return served
                elif served.health()["model"] is not None:
                    return served
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("serve did not answer")
    return served


def stop(served: Served) -> None:
    served.proc.terminate()
    try:
        served.proc.wait(15)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Iterator[Served]:
    served = start(make_home(tmp_path_factory.mktemp("api") / "home", starter_model))
    yield served
    stop(served)


@pytest.fixture()
def openai_client(server: Served):  # type: ignore[no-untyped-def]
    import openai

    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120)


def model_of(server: Served) -> str:
    return server.health()["model"]


# -- the OpenAI SDK -------------------------------------------------------------------


@pytest.mark.slow
def test_sdk_lists_models_with_the_loaded_one_marked(server: Served, openai_client, starter_model) -> None:
    models = openai_client.models.list().data
    assert [m.id for m in models] == [starter_model.name]
    assert models[0].model_extra["loaded"] is True


@pytest.mark.slow
def test_sdk_chat_reply_with_usage(server: Served, openai_client) -> None:
    reply = openai_client.chat.completions.create(
        model=model_of(server), messages=[{"role": "user", "content": "The capital of France is"}])
    text = reply.choices[0].message.content
    assert text and text.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 5
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


@pytest.mark.slow
def test_sdk_streams_tokens_as_they_come_with_usage_last(server: Served, openai_client) -> None:
    whole = openai_client.chat.completions.create(
        model=model_of(server), max_tokens=40, messages=[{"role": "user", "content": "Tell me a story."}])
    arrivals: list[tuple[float, str]] = []
    finish, usage = None, None
    stream = openai_client.chat.completions.create(
        model=model_of(server), max_tokens=40, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Tell me a story."}])
    for chunk in stream:
        if chunk.choices:
            if chunk.choices[0].delta.content:
                arrivals.append((time.monotonic(), chunk.choices[0].delta.content))
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(t for _, t in arrivals) == whole.choices[0].message.content
    assert len(arrivals) >= 10
    # Incremental: the pieces span the generation, not one burst at the end.
    assert arrivals[-1][0] - arrivals[0][0] > 0.2
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.slow
def test_sdk_stop_strings_end_the_reply_where_they_appear(server: Served, openai_client) -> None:
    messages = [{"role": "user", "content": "Write a list of fruits."}]
    whole = openai_client.chat.completions.create(model=model_of(server), max_tokens=30,
                                                  messages=messages).choices[0].message.content
    words = [w for w in whole.split() if len(w) > 2]
    assert len(words) >= 3, whole
    stop = words[len(words) // 2]
    cut = openai_client.chat.completions.create(model=model_of(server), max_tokens=30,
                                                messages=messages, stop=[stop, "zzzz"])
    assert cut.choices[0].message.content == whole[:whole.index(stop)].rstrip() or \
        cut.choices[0].message.content == whole[:whole.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


@pytest.mark.slow
def test_sdk_completion_continues_the_prompt_as_given(server: Served, openai_client) -> None:
    reply = openai_client.completions.create(model=model_of(server), prompt="The capital of France is",
                                             max_tokens=8)
    text = reply.choices[0].text
    assert text.strip()
    assert reply.usage.completion_tokens > 0
    # No chat template around it: a base model continues the sentence (" Paris...").
    assert "<start_of_turn>" not in text
    streamed = "".join(c.choices[0].text for c in openai_client.completions.create(
        model=model_of(server), prompt="The capital of France is", max_tokens=8, stream=True)
        if c.choices)
    assert streamed == text


@pytest.mark.slow
def test_sdk_errors_are_the_sdks_own(server: Served, openai_client) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert "gpt-4o" in str(caught.value) and model_of(server) in str(caught.value)
    with pytest.raises(openai.BadRequestError, match="not supported"):
        openai_client.chat.completions.create(model=model_of(server), n=2,
                                              messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="tools"):
        openai_client.chat.completions.create(
            model=model_of(server), messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])


# -- the Anthropic SDK ----------------------------------------------------------------


@pytest.mark.slow
def test_anthropic_sdk_messages_whole_and_streamed(server: Served) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=server.base, api_key="unused", max_retries=0, timeout=120)
    kwargs = {"model": model_of(server), "max_tokens": 20, "system": "You are terse.",
              "messages": [{"role": "user", "content": "Name a colour."}]}
    whole = client.messages.create(**kwargs)
    assert whole.type == "message" and whole.role == "assistant"
    text = whole.content[0].text
    assert text.strip() and whole.stop_reason in ("end_turn", "max_tokens")
    assert whole.usage.output_tokens > 0
    pieces = []
    with client.messages.stream(**kwargs) as stream:
        for piece in stream.text_stream:
            pieces.append(piece)
        final = stream.get_final_message()
    assert len(pieces) >= 2 and "".join(pieces) == text
    assert final.content[0].text == text and final.usage.output_tokens == whole.usage.output_tokens
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(**{**kwargs, "model": "claude-opus"})


# -- raw SSE --------------------------------------------------------------------------


@pytest.mark.slow
def test_curl_sees_well_formed_sse(server: Served) -> None:
    body = ('{"model": "%s", "stream": true, "max_tokens": 12, '
            '"messages": [{"role": "user", "content": "Hello"}]}' % model_of(server))
    out = subprocess.run(["curl", "-sN", "-H", "Content-Type: application/json", "-d", body,
                          server.url + "/chat/completions"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.endswith("data: [DONE]\n\n")
    blocks = out.stdout.split("\n\n")[:-1]
    assert len(blocks) >= 4
    assert all(b.startswith("data: ") and "\n" not in b for b in blocks)
    out = subprocess.run(["curl", "-sN", "-H", "Content-Type: application/json", "-d",
                          body.replace('"messages"', '"system": "Be kind.", "messages"'),
                          server.url + "/messages"], capture_output=True, text=True, timeout=60)
    events = [b.split("\n") for b in out.stdout.split("\n\n") if b]
    assert all(len(e) == 2 and e[0].startswith("event: ") and e[1].startswith("data: ") for e in events)
    assert events[0][0] == "event: message_start" and events[-1][0] == "event: message_stop"


# -- sharing the engine -------------------------------------------------------------


@pytest.mark.slow
def test_a_client_that_hangs_up_stops_its_generation(server: Served) -> None:
    body = {"model": model_of(server), "stream": True, "max_tokens": 400,
            "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]}
    received = 0
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and '"content"' in line:
                received += 1
            if received >= 5:
                break
    # The connection is closed here, mid-reply.
    deadline = time.monotonic() + 20
    last = None
    while time.monotonic() < deadline:
        health = server.health()
        last = health["recent"][-1] if health["recent"] else None
        if health["engine"] == "idle" and last and last["stop_reason"] == "cancelled":
            break
        time.sleep(0.05)
    assert last is not None and last["stop_reason"] == "cancelled", last
    # Stopped within a few tokens of the hang-up, far from the 400 asked for.
    assert last["completion_tokens"] < received + 20, last
    # And the next request is served.
    reply = httpx.post(server.url + "/chat/completions", timeout=60, json={
        "model": model_of(server), "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]


@pytest.mark.slow
@pytest.mark.timeout(900)  # sixteen replies; a loaded 2-core machine decodes at a tenth of its speed
def test_eight_streaming_clients_each_get_their_own_whole_reply(server: Served, openai_client) -> None:
    import openai

    topics = ["cats", "the sea", "a robot", "winter", "music", "a city", "bread", "the moon"]
    asks = [[{"role": "user", "content": f"Write two sentences about {t}."}] for t in topics]
    model = model_of(server)
    alone = [openai_client.chat.completions.create(model=model, max_tokens=32, messages=m)
             .choices[0].message.content for m in asks]
    got: dict[int, str] = {}
    errors: list[BaseException] = []
    opened = threading.Barrier(len(asks) + 1, timeout=60)

    def client(i: int) -> None:
        try:
            stream = openai_client.chat.completions.create(model=model, max_tokens=32, messages=asks[i],
                                                           stream=True)
            opened.wait()
            got[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            opened.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(asks))]
    for t in threads:
        t.start()
    opened.wait()
    # One generating and seven waiting: the bound is reached, a ninth is told to come back.
    with pytest.raises(openai.APIStatusError) as busy:
        openai_client.chat.completions.create(model=model, max_tokens=4,
                                              messages=[{"role": "user", "content": "Hi"}])
    for t in threads:
        t.join(600)
    assert errors == []
    assert busy.value.status_code == 503
    assert busy.value.response.headers["retry-after"] == "2"
    assert [got[i] for i in range(len(asks))] == alone


@pytest.mark.slow
def test_a_resent_conversation_reuses_the_kv_cache(server: Served, openai_client) -> None:
    messages = [{"role": "system", "content": "You are a helpful assistant who answers briefly."}]
    usages = []
    for turn in range(10):
        messages.append({"role": "user", "content": f"Question number {turn + 1}: tell me a fact."})
        reply = openai_client.chat.completions.create(model=model_of(server), max_tokens=16,
                                                      messages=messages)
        usages.append(reply.usage)
        messages.append({"role": "assistant", "content": reply.choices[0].message.content})
    tenth = usages[-1]
    assert tenth.prompt_tokens > 200
    cached = tenth.prompt_tokens_details.cached_tokens
    assert cached >= 0.8 * tenth.prompt_tokens, (cached, tenth.prompt_tokens)
    for usage in usages[1:]:
        assert usage.prompt_tokens_details.cached_tokens > usage.prompt_tokens / 2


@pytest.mark.slow
def test_api_chats_land_in_history_when_asked(server: Served, openai_client) -> None:
    from rmm_tray.app import App
    from rmm_tray.home.config import Config
    from rmm_tray.home.paths import DataHome

    ask = [{"role": "user", "content": "A question only this test asks, about kites."}]
    reply = openai_client.chat.completions.create(model=model_of(server), messages=ask)
    core = App(DataHome(server.root), Config.load(server.root / "config.toml"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chats = [c for c in core.history.list_chats() if "kites" in c.title]
        if chats:
            break
        time.sleep(0.1)
    assert chats and chats[0].source == "api"
    stored = core.history.load_chat(chats[0].id).messages
    assert [m.content for m in stored] == [ask[0]["content"], reply.choices[0].message.content]


# -- security -----------------------------------------------------------------------


def test_serve_refuses_other_addresses_without_a_key(tmp_path: Path) -> None:
    root = make_home(tmp_path / "home", None, "")
    proc = subprocess.run([*CLI, "serve", "--host", "0.0.0.0", "--port", str(free_port())], cwd=REPO,
                          env={**os.environ, "RMM_HOME": str(root)}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "without an API key" in lines[0] and "api_key" in lines[0]


def test_with_a_key_requests_without_it_get_401(tmp_path: Path) -> None:
    import openai

    root = make_home(tmp_path / "home", None, '[server]\napi_key = "let-me-in"\nmax_body_bytes = 4096\n')
    served = start(root, "--host", "0.0.0.0")
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=served.url, api_key="wrong", max_retries=0).models.list()
        assert httpx.get(served.url + "/models").status_code == 401
        assert httpx.get(served.base + "/health").status_code == 401
        good = openai.OpenAI(base_url=served.url, api_key="let-me-in", max_retries=0)
        assert good.models.list().data == []
        headers = {"Authorization": "Bearer let-me-in", "Content-Type": "application/json"}
        big = httpx.post(served.url + "/chat/completions", headers=headers,
                         content=b'{"messages": "' + b"x" * 10000 + b'"}')
        assert big.status_code == 413 and "4096 bytes" in big.json()["error"]["message"]
        bad = httpx.post(served.url + "/chat/completions", headers=headers, content=b"{oops")
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
        assert "Traceback" not in bad.text
    finally:
        stop(served)


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        root = make_home(tmp_path / "home", None, "")
        proc = subprocess.run([*CLI, "serve", "--port", str(taken.getsockname()[1])], cwd=REPO,
                              env={**os.environ, "RMM_HOME": str(root)}, capture_output=True,
                              text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "already in use" in lines[0], proc.stderr
