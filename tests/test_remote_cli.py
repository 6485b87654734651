"""Remote engines as a person uses them from the CLI: a real `rmm-tray serve` on
the starter model (and llama-cpp-python's own server, where its extra is
installed) on loopback as the remote; `remote add/list/rm`, a chat streamed
from it into history, and each failure as one line."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2 as httpx
import pytest
from test_server_api import Served, make_home, start, stop

from conftest import CLI, REPO, json_lines

pytestmark = pytest.mark.integration

LOCAL_CONFIG = "[model]\ncontext_length = 1024\n[generation]\ntemperature = 0.0\nmax_tokens = 24\n"


def cli(home: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "RMM_HOME": str(home), **(env or {})}
    full.pop("RMM_PLUGINS", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          input=input, env=full, cwd=REPO)


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Iterator[Served]:
    served = start(make_home(tmp_path_factory.mktemp("remote") / "home", starter_model))
    yield served
    stop(served)


@pytest.fixture()
def local(tmp_path: Path, starter_model: Path) -> Path:
    """The person's own home: the starter model too, so the local model stays usable."""
    return make_home(tmp_path / "local", starter_model, LOCAL_CONFIG)


def remote_model(served: Served) -> str:
    return served.health()["model"]


def test_remote_add_list_rm(local: Path, remote: Served) -> None:
    added = cli(local, "remote", "add", "box", remote.base)
    assert added.returncode == 0, added.stderr
    model = remote_model(remote)
    assert f"added box at {remote.url}: 1 model ({model})" in added.stdout
    listed = cli(local, "remote", "list")
    assert listed.returncode == 0, listed.stderr
    assert "box" in listed.stdout and model in listed.stdout
    everything = cli(local, "models", "list", "--all")
    assert f"box:{model}" in everything.stdout
    assert "gemma-3-270m" in everything.stdout  # the local model is still listed
    twice = cli(local, "remote", "add", "box", remote.base)
    assert twice.returncode == 1
    assert "there is a server 'box' already" in error_line(twice)
    gone = cli(local, "remote", "rm", "box")
    assert gone.returncode == 0 and "removed box" in gone.stdout
    assert "No servers yet" in cli(local, "remote", "list").stdout
    assert "box:" not in cli(local, "models", "list", "--all").stdout


def test_remote_add_of_a_server_that_is_not_there_is_one_line_and_adds_nothing(local: Path) -> None:
    port = free_port()
    proc = cli(local, "remote", "add", "nowhere", f"http://127.0.0.1:{port}")
    assert proc.returncode == 1
    line = error_line(proc)
    assert line.startswith(f"rmm-tray: error: nowhere: cannot reach http://127.0.0.1:{port}/v1")
    assert "No servers yet" in cli(local, "remote", "list").stdout
    bad = cli(local, "remote", "add", "x", "gpu-box:8080")
    assert bad.returncode == 1 and "is not an http:// or https:// URL" in error_line(bad)


def test_chat_streams_from_the_remote_and_lands_in_history(local: Path, remote: Served) -> None:
    assert cli(local, "remote", "add", "box", remote.base).returncode == 0
    name = f"box:{remote_model(remote)}"
    proc = cli(local, "chat", "-m", name, "--json", "The capital of France is")
    assert proc.returncode == 0, proc.stderr
    events = json_lines(proc.stdout)
    tokens = [e["text"] for e in events if e["type"] == "token"]
    done = events[-1]
    assert len(tokens) > 1 and done["type"] == "done"  # streamed, not one block
    # Our max_tokens (24) travelled to the server, and its finish_reason came back.
    assert done["model"] == name and done["stop_reason"] == "length"
    assert done["completion_tokens"] == 24 and done["prompt_tokens"] > 0  # the server's usage
    assert done["ttft_s"] > 0 and done["decode_tok_s"] > 0  # measured at our end
    shown = cli(local, "chats", "show", done["chat_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    chat = json.loads(shown.stdout)
    messages = chat["messages"]
    assert chat["model"] == name
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == "".join(tokens) and not messages[1].get("interrupted")
    # The same reply as the server gives its own clients: the same chat path, no second one.
    again = cli(local, "chat", "-m", name, "-c", done["chat_id"], "--json", "And of Italy?")
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[-1]["type"] == "done"
    # The local model answers as before, beside the remote.
    mine = cli(local, "chat", "--json", "Hello")
    assert mine.returncode == 0, mine.stderr
    assert json_lines(mine.stdout)[-1]["model"].startswith("gemma-3-270m")


def test_a_wrong_api_key_is_one_line(tmp_path: Path, starter_model: Path, local: Path) -> None:
    port = free_port()
    config = "[model]\ncontext_length = 1024\n[server]\napi_key = \"right-key\"\n"
    served = start(make_home(tmp_path / "keyed", starter_model, config), "--host", "127.0.0.1",
                   port=port)
    try:
        url = f"http://127.0.0.1:{port}"
        refused = cli(local, "remote", "add", "keyed", url, "--api-key-env", "BOX_KEY",
                      env={"BOX_KEY": "wrong-key"})
        assert refused.returncode == 1
        line = error_line(refused)
        assert "keyed: the server refused the API key (HTTP 401); check $BOX_KEY" in line
        assert "wrong-key" not in refused.stdout + refused.stderr
        ok = cli(local, "remote", "add", "keyed", url, "--api-key-env", "BOX_KEY",
                 env={"BOX_KEY": "right-key"})
        assert ok.returncode == 0, ok.stderr
        listed = cli(local, "remote", "list", env={"BOX_KEY": "right-key"})
        assert "$BOX_KEY" in listed.stdout and "right-key" not in listed.stdout
        model = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer right-key"},
                          timeout=10).json()["data"][0]["id"]
        wrong = cli(local, "chat", "-m", f"keyed:{model}", "Hi", env={"BOX_KEY": "wrong-key"})
        assert wrong.returncode == 1
        assert error_line(wrong) == ("rmm-tray: error: keyed: the server refused the API key "
                                     "(HTTP 401); check $BOX_KEY")
    finally:
        stop(served)


def test_a_key_from_stdin_is_stored_privately_and_never_printed(local: Path, remote: Served) -> None:
    proc = cli(local, "remote", "add", "box", remote.base, "--api-key-stdin", input="s3cret-key\n",
               env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert proc.returncode == 0, proc.stderr
    assert "s3cret-key" not in proc.stdout + proc.stderr
    config = local / "config.toml"
    # No keyring backend here (forced): the key goes into config.toml, private.
    assert "(key in config.toml, mode 0600)" in proc.stdout
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert 'api_key = "s3cret-key"' in config.read_text()
    listed = cli(local, "remote", "list")
    assert "s3cret-key" not in listed.stdout + listed.stderr


class _Garbage(BaseHTTPRequestHandler):
    """A server on loopback that answers /v1/models properly and then sends HTML
    where the event stream should be."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._send(200, "application/json", b'{"object":"list","data":[{"id":"m"}]}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._send(200, "text/html", b"<html><body>Welcome to nginx!</body></html>\n")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_server_sending_garbage_is_one_line(local: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert cli(local, "remote", "add", "junk", url).returncode == 0
        proc = cli(local, "chat", "-m", "junk:m", "Hi")
        assert proc.returncode == 1
        assert error_line(proc) == ("rmm-tray: error: junk: the server's reply is not an OpenAI "
                                    "event stream (it began '<html><body>Welcome to nginx!</body></ht')")
        # The same server spoken to with TLS, which it does not speak: one line too.
        tls = cli(local, "remote", "add", "tls", url.replace("http:", "https:"))
        assert tls.returncode == 1
        assert error_line(tls).startswith(f"rmm-tray: error: tls: TLS failed for "
                                          f"{url.replace('http:', 'https:')}/v1: ")
    finally:
        server.shutdown()


def test_a_model_gone_is_one_line(local: Path, remote: Served) -> None:
    assert cli(local, "remote", "add", "box", remote.base).returncode == 0
    proc = cli(local, "chat", "-m", "box:no-such-model", "Hi")
    assert proc.returncode == 1
    line = error_line(proc)
    assert line.startswith("rmm-tray: error: box: the server has no model 'no-such-model' (HTTP 404")


def test_killing_the_server_mid_reply_keeps_the_partial_reply_interrupted(
        tmp_path: Path, starter_model: Path, local: Path) -> None:
    config = "[model]\ncontext_length = 1024\n[generation]\nmax_tokens = 400\ntemperature = 0.8\n"
    served = start(make_home(tmp_path / "doomed", starter_model, config))
    try:
        assert cli(local, "remote", "add", "doomed", served.base).returncode == 0
        name = f"doomed:{remote_model(served)}"
        env = {**os.environ, "RMM_HOME": str(local)}
        env.pop("RMM_PLUGINS", None)
        proc = subprocess.Popen(
            [*CLI, "chat", "-m", name, "--json", "--max-tokens", "400",
             "Write a long story about a dragon and a knight."],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        assert proc.stdout is not None
        tokens = []
        for line in proc.stdout:
            event = json.loads(line)
            if event["type"] == "token":
                tokens.append(event["text"])
            if len(tokens) >= 5:
                break
        served.proc.kill()  # mid-reply
        served.proc.wait()
        # The rest through the same reader: lines it has read ahead of the loop above
        # are in its buffer (communicate() would read past them, from the pipe).
        guard = threading.Timer(60, proc.kill)
        guard.start()
        try:
            rest = proc.stdout.read()
            assert proc.stderr is not None
            err = proc.stderr.read()
            proc.wait()
        finally:
            guard.cancel()
    finally:
        stop(served) if served.proc.poll() is None else None
    assert proc.returncode == 1
    events = json_lines(rest)
    assert events[-1]["type"] == "error"
    assert events[-1]["message"].startswith("doomed: the stream stopped mid-reply")
    assert [e for e in err.splitlines() if e.strip()] == [f"rmm-tray: error: {events[-1]['message']}"]
    said = "".join(tokens) + "".join(e["text"] for e in events if e["type"] == "token")
    chats = json.loads(cli(local, "chats", "list", "--json").stdout)
    chat = json.loads(cli(local, "chats", "show", chats[0]["id"], "--json").stdout)
    reply = chat["messages"][-1]
    assert reply["role"] == "assistant" and reply["interrupted"] is True
    assert reply["content"] == said and len(said) > 0
    # The local model is still usable.
    mine = cli(local, "chat", "--json", "Hello")
    assert mine.returncode == 0 and json_lines(mine.stdout)[-1]["type"] == "done"


def test_llama_cpp_server_as_a_remote(local: Path, starter_model: Path, tmp_path: Path) -> None:
    port = free_port()
    output = tmp_path / "llama_cpp_server.log"  # a file: its verbose log would fill a pipe
    with output.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(starter_model), "--host",
             "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--model_alias", "gemma",
             "--chat_format", "gemma"],
            stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, output.read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"llama_cpp.server did not answer: {output.read_text()[-2000:]}")
        added = cli(local, "remote", "add", "llamacpp", f"http://127.0.0.1:{port}")
        assert added.returncode == 0, added.stderr
        assert "1 model (gemma)" in added.stdout
        proc = cli(local, "chat", "-m", "llamacpp:gemma", "--json", "The capital of France is")
        assert proc.returncode == 0, proc.stderr
        events = json_lines(proc.stdout)
        tokens = [e["text"] for e in events if e["type"] == "token"]
        assert len(tokens) > 1 and events[-1]["type"] == "done"
        assert events[-1]["model"] == "llamacpp:gemma"
        chat = json.loads(cli(local, "chats", "show", events[-1]["chat_id"], "--json").stdout)
        assert chat["messages"][-1]["content"] == "".join(tokens)
    finally:
        server.terminate()
        server.wait(15)
