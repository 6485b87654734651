"""Plugins cannot freeze or end the app, and the local endpoint cannot be jammed or
used to run code.

Every case that hung before has a time limit here: the test fails fast instead."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from multiprocessing import Pipe
from multiprocessing.connection import Client
from pathlib import Path

import pytest

from conftest import CLI, REPO, json_lines, run_cli
from rmm_tray.chat.drafts import MessageDraft
from rmm_tray.desktop import ipc
from rmm_tray.hooks.host import PluginHost
from rmm_tray.hooks.specs import hookimpl

# Each case here hung (or ended the process) before: a regression must fail fast.
pytestmark = pytest.mark.timeout(30)

# -- the plugin host: nothing a plugin raises or does ends or freezes the caller ----------


class Exits:
    @hookimpl
    def before_send(self, draft):
        sys.exit(3)


class Interrupts:
    @hookimpl
    def before_send(self, draft):
        raise KeyboardInterrupt


class ClosesGenerators:
    @hookimpl
    def before_send(self, draft):
        raise GeneratorExit


class Appends:
    @hookimpl
    def before_send(self, draft):
        draft.text += "!"


def test_system_exit_and_interrupts_raised_by_a_hook_cost_only_that_plugin() -> None:
    host = PluginHost()
    for name, plugin in (("exits", Exits()), ("interrupts", Interrupts()),
                         ("generators", ClosesGenerators()), ("appends", Appends())):
        host.register(plugin, name)
    draft = MessageDraft(text="hi", chat_id="c", role="user")
    host.filter("before_send", draft)
    assert draft.text == "hi!"
    assert "SystemExit" in host.infos["exits"].error
    assert "KeyboardInterrupt" in host.infos["interrupts"].error
    assert "GeneratorExit" in host.infos["generators"].error
    assert host.infos["appends"].error is None
    # Raising is not hanging: the plugin is called again next time.
    assert [name for name, _ in host.call_each("before_send", draft=draft)] == ["appends"]


class Blocks:
    """A hook that hangs until the test lets it go (so no thread outlives the test)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    @hookimpl
    def before_send(self, draft):
        self.calls += 1
        self.release.wait(30)
        draft.text = "rewritten too late"

    @hookimpl
    def register_prompt_templates(self, register):
        self.release.wait(30)
        register("late")


def test_a_hanging_hook_is_abandoned_after_its_time_limit_and_skipped_after() -> None:
    host = PluginHost(hook_timeout_s=0.3)
    blocks = Blocks()
    host.register(blocks, "blocks")
    host.register(Appends(), "appends")
    draft = MessageDraft(text="hi", chat_id="c", role="user")
    try:
        started = time.monotonic()
        host.filter("before_send", draft)
        assert time.monotonic() - started < 2
        assert draft.text == "hi!", "the others still ran"
        assert "did not return within 0.3 s" in host.infos["blocks"].error
        assert host.collect("register_prompt_templates", lambda o: True, "thing") == []
        assert blocks.calls == 1, "a plugin that timed out is not called again this session"
    finally:
        blocks.release.set()
    # When the abandoned call ends at last, what it does to its copy changes nothing.
    time.sleep(0.1)
    assert draft.text == "hi!"


def test_late_register_calls_of_an_abandoned_collect_are_dropped() -> None:
    host = PluginHost(hook_timeout_s=0.3)
    blocks = Blocks()
    host.register(blocks, "blocks")
    found = host.collect("register_prompt_templates", lambda o: True, "thing")
    blocks.release.set()
    time.sleep(0.1)
    assert found == []


def test_a_real_ctrl_c_while_a_hook_runs_still_stops_the_caller() -> None:
    host = PluginHost(hook_timeout_s=10)
    blocks = Blocks()
    host.register(blocks, "blocks")
    # SIGINT to the main thread, as the terminal sends it, while it waits for the hook.
    timer = threading.Timer(0.3, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            host.filter("before_send", MessageDraft(text="hi", chat_id="c", role="user"))
    finally:
        timer.cancel()
        blocks.release.set()
    assert time.monotonic() - started < 5


def test_a_filter_that_leaves_no_text_is_ignored() -> None:
    class Breaks:
        @hookimpl
        def after_reply(self, draft):
            draft.text = None

    host = PluginHost()
    host.register(Breaks(), "breaks")
    draft = MessageDraft(text="whole reply", chat_id="c", role="assistant")
    host.filter("after_reply", draft)
    assert draft.text == "whole reply"
    assert "non-text" in host.infos["breaks"].error


def test_dropins_that_exit_or_interrupt_at_import_fail_alone(tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(7)\n")
    (tmp_path / "interrupts.py").write_text("raise KeyboardInterrupt\n")
    (tmp_path / "fine.py").write_text("__version__ = '1'\n")
    host = PluginHost()
    host.load(dropin_dir=tmp_path)
    assert "import failed: SystemExit" in host.infos["exits"].error
    assert "import failed: KeyboardInterrupt" in host.infos["interrupts"].error
    assert host.infos["fine"].error is None


def test_a_dropin_named_like_a_loaded_plugin_is_refused_before_its_code_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "history_jsonl.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    host = PluginHost()
    host.load(dropin_dir=tmp_path)
    assert not marker.exists()
    clashes = [i for i in host.tried if i.name == "history_jsonl"]
    assert [(i.source, i.error is None) for i in clashes] == [("first-party", True),
                                                              ("drop-in", False)]
    assert "name already taken by the first-party plugin" in clashes[1].error


def test_startup_hooks_run_in_the_background(tmp_path: Path) -> None:
    from rmm_tray.app import App
    from rmm_tray.home.config import Config
    from rmm_tray.home.paths import DataHome

    class SlowStart:
        def __init__(self) -> None:
            self.release = threading.Event()
            self.started = threading.Event()

        @hookimpl
        def startup(self):
            self.started.set()
            self.release.wait(30)

    app = App(DataHome(tmp_path).ensure(), Config.defaults())
    host = PluginHost()
    slow = SlowStart()
    host.register(slow, "slow")
    app.__dict__["plugins"] = host  # the cached property, without loading anything
    try:
        started = time.monotonic()
        app.start()
        assert time.monotonic() - started < 1
        assert slow.started.wait(5), "startup did run"
    finally:
        slow.release.set()
        app.close()


def test_a_reply_shown_whole_is_saved_whole_whatever_the_filters_do() -> None:
    from rmm_tray.chat.history import ChatMessage
    from rmm_tray.chat.turn import Turn, TurnResult
    from rmm_tray.errors import RmmError

    saved: list[ChatMessage] = []

    class FakeApp:
        class history:  # noqa: N801 - stands in for the App's attribute
            @staticmethod
            def append_message(chat_id, message):
                saved.append(message)

        @staticmethod
        def filter_message(hook, draft):
            raise RmmError("a filter broke")

    turn = Turn.__new__(Turn)
    turn.app, turn.model_name, turn.result = FakeApp(), "m.gguf", TurnResult("chat")
    reply = ChatMessage("assistant", "", interrupted=True)
    with pytest.raises(RmmError):
        turn._save_reply(reply, "the whole reply", True)
    assert [(m.content, m.interrupted) for m in saved] == [("the whole reply", False)]


# -- the endpoint: no client can jam it, stall a command or run code -----------------------


@pytest.fixture()
def server(tmp_path: Path):
    seen: list[dict] = []

    def handler(message, conn):
        seen.append(message)
        return {"ok": True, "echo": message.get("cmd")}

    srv = ipc.Server(tmp_path, handler).start()
    srv.seen = seen
    yield srv
    srv.close()


def test_a_silent_client_blocks_nobody_and_is_dropped(server: ipc.Server, tmp_path: Path) -> None:
    server.handshake_timeout_s = 0.5
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.settimeout(5)
    silent.connect(server.address)
    try:
        started = time.monotonic()
        assert ipc.request(tmp_path, {"cmd": "toggle"}, timeout=2)["echo"] == "toggle"
        assert time.monotonic() - started < 1
        # The server sends its challenge, waits its limit for an answer, then hangs up.
        received = b""
        while chunk := silent.recv(4096):
            received += chunk
        assert received, "the challenge came, then the end of the link"
    finally:
        silent.close()


def test_a_client_that_authenticates_then_says_nothing_is_dropped(
    server: ipc.Server, tmp_path: Path
) -> None:
    server.handshake_timeout_s = 0.5
    conn = ipc.connect(tmp_path, timeout=2)
    with conn:
        assert conn.poll(5), "the server ended the idle link"
        with pytest.raises(EOFError):
            conn.recv_bytes()


_STOPPABLE_SERVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rmm_tray.desktop import ipc
    ipc.Server(Path(sys.argv[1]), lambda m, c: {"ok": True}).start()
    print("ready", flush=True)
    time.sleep(60)
""")


def test_a_stopped_app_makes_requests_fail_within_their_limit(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _STOPPABLE_SERVER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert ipc.request(tmp_path, {"cmd": "ping"}, timeout=5) == {"ok": True}
        os.kill(proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ipc.NotAnswering) as caught:
            ipc.request(tmp_path, {"cmd": "toggle"}, timeout=0.5)
        assert time.monotonic() - started < 2
        assert "\n" not in str(caught.value) and "did not" in str(caught.value)
        # A second app does not take over the endpoint of a stopped one, nor wait on it.
        started = time.monotonic()
        with pytest.raises(ipc.StuckInstance, match="does not answer"):
            ipc.Server(tmp_path, lambda m, c: None).start()
        assert time.monotonic() - started < 5
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(5)


class _MakesAFile:
    """Unpickling this creates a file: the proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_from_an_authenticated_client_is_refused(
    server: ipc.Server, tmp_path: Path
) -> None:
    target = tmp_path / "pwned"
    conn = Client(server.address, family="AF_UNIX", authkey=ipc.read_key(tmp_path))
    with conn:
        conn.send(_MakesAFile(target))  # a pickle, as Connection.send writes them
        assert conn.poll(5)
        reply = json.loads(conn.recv_bytes())
    assert "not JSON" in reply["error"]
    assert not target.exists(), "no code ran in the core"
    assert server.seen == []
    assert ipc.request(tmp_path, {"cmd": "ping"})["ok"], "the server lives on"


def test_the_other_side_refuses_pickles_and_oversized_messages_too(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    a, b = Pipe()
    with a, b:
        a.send(_MakesAFile(target))
        with pytest.raises(ipc.BadMessage):
            ipc.recv_json(b, 1)
        assert not target.exists()
        a.send_bytes(pickle.dumps({"cmd": "show"}))
        with pytest.raises(ipc.BadMessage):
            ipc.recv_json(b, 1)
        ipc.send_json(a, {"text": "x" * 100})
        with pytest.raises(ipc.BadMessage, match="limit"):
            ipc.recv_json(b, 1, max_bytes=64)
    a, b = Pipe()
    with a, b:
        ipc.send_json(a, {"event": "show", "text": "é"})
        assert ipc.recv_json(b, 1) == {"event": "show", "text": "é"}
        with pytest.raises(ipc.NotAnswering):
            ipc.recv_json(b, 0.1)


def test_a_message_that_is_not_a_command_gets_an_error(server: ipc.Server, tmp_path: Path) -> None:
    with ipc.connect(tmp_path, timeout=2) as conn:
        ipc.send_json(conn, ["not", "an", "object"])
        assert "JSON object" in ipc.recv_json(conn, 2)["error"]
        ipc.send_json(conn, {"cmd": "ping"})
        assert ipc.recv_json(conn, 2) == {"ok": True, "echo": "ping"}
    assert server.seen == [{"cmd": "ping"}]


# -- end to end, through the CLI -------------------------------------------------------------


@pytest.fixture()
def plain_home(home: Path) -> Path:
    """A data home whose first start does not copy the starter model in (these
    tests need no model, and copying it costs seconds)."""
    (home / "state.json").write_text('{"starter_installed": "gemma-3-270m-q4_k_m.gguf"}\n')
    return home


def _plugins(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.integration
def test_a_dropin_that_exits_at_import_ends_no_command(plain_home: Path) -> None:
    (plain_home / "plugins" / "quitter.py").write_text("import sys\nsys.exit(9)\n")
    (plain_home / "plugins" / "ctrl_c.py").write_text("raise KeyboardInterrupt\n")
    listed = {p["name"]: p for p in _plugins(run_cli("plugins", "--json", timeout=30))}
    assert listed["quitter"]["status"] == "failed"
    assert "SystemExit" in listed["quitter"]["error"]
    assert "KeyboardInterrupt" in listed["ctrl_c"]["error"]
    prompts = run_cli("prompts", "list", "--json", timeout=30)
    assert prompts.returncode == 0, prompts.stderr
    assert "summarize" in {t["name"] for t in json.loads(prompts.stdout)}


@pytest.mark.integration
def test_a_first_party_name_clash_is_listed_as_failed(plain_home: Path) -> None:
    marker = plain_home / "ran"
    (plain_home / "plugins" / "history_jsonl.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n")
    listed = [p for p in _plugins(run_cli("plugins", "--json", timeout=30))
              if p["name"] == "history_jsonl"]
    assert [(p["source"], p["status"]) for p in listed] == [("first-party", "ok"),
                                                            ("drop-in", "failed")]
    assert "name already taken" in listed[1]["error"]
    assert not marker.exists(), "the clashing drop-in's code did not run"
    table = run_cli("plugins", timeout=30).stdout
    assert "failed: name already taken by the first-party plugin 'history_jsonl'" in table


@pytest.mark.integration
def test_a_sleeping_startup_does_not_keep_the_app_from_answering(plain_home: Path) -> None:
    (plain_home / "plugins" / "sleepy.py").write_text(textwrap.dedent("""
        import time
        from rmm_tray import hookimpl

        @hookimpl
        def startup():
            time.sleep(60)
    """))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    log = (plain_home / "logs" / "start.log").open("w")
    # No display: the popup process cannot open its window and is restarted, but the
    # core, its endpoint and Quit do not wait for it, nor for the sleeping plugin.
    proc = subprocess.Popen([*CLI, "start", "--no-tray", "--no-hotkey"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        # The popup is started (it cannot open here) while the plugin's startup sleeps.
        while True:
            try:
                if ipc.request(plain_home, {"cmd": "status"}, timeout=2)["popup_starts"] >= 1:
                    break
            except ipc.IPCError:
                pass
            assert proc.poll() is None, "the app ended"
            assert time.monotonic() < deadline, "the app never answered with its popup started"
            time.sleep(0.2)
        toggle = run_cli("toggle", timeout=15, env=env)
        assert toggle.returncode == 0, toggle.stderr
        started = time.monotonic()
        assert run_cli("quit", timeout=15, env=env).returncode == 0
        assert proc.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.mark.integration
def test_toggle_without_an_app_and_with_a_stopped_one_says_so_in_one_line(
    plain_home: Path
) -> None:
    result = run_cli("toggle", timeout=15)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["rmm-tray: error: RunMyModel is not running"]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_hanging_before_send_does_not_hang_chat(home_with_model: Path) -> None:
    (home_with_model / "config.toml").write_text(
        "[model]\ncontext_length = 1024\n[generation]\ntemperature = 0.0\nmax_tokens = 4\n"
        "[plugins]\nhook_timeout_s = 1.0\n")
    (home_with_model / "plugins" / "stuck.py").write_text(textwrap.dedent("""
        import time
        from rmm_tray import hookimpl

        @hookimpl
        def before_send(draft):
            time.sleep(600)
            draft.text = "never"
    """))
    started = time.monotonic()
    result = run_cli("chat", "--json", "Hello", timeout=60)
    assert result.returncode == 0, result.stderr
    # A second or two on an idle machine; the bound only has to tell it from a hang.
    assert time.monotonic() - started < 45
    assert "stuck" in result.stderr and "did not return within 1 s" in result.stderr
    chat_id = json_lines(result.stdout)[-1]["chat_id"]
    shown = json.loads(run_cli("chats", "show", chat_id, "--json").stdout)
    assert shown["messages"][0]["content"] == "Hello", "the stuck plugin changed nothing"


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_an_after_reply_that_exits_leaves_the_reply_saved_complete(home_with_model: Path) -> None:
    (home_with_model / "plugins" / "exits.py").write_text(textwrap.dedent("""
        import sys
        from rmm_tray import hookimpl

        @hookimpl
        def after_reply(draft):
            sys.exit(0)
    """))
    result = run_cli("chat", "--json", "--max-tokens", "6", "Hello", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    shown_text = "".join(e["text"] for e in lines if e["type"] == "token")
    chat_id = lines[-1]["chat_id"]
    reply = json.loads(run_cli("chats", "show", chat_id, "--json").stdout)["messages"][-1]
    assert reply["role"] == "assistant"
    assert (reply["content"], reply["interrupted"]) == (shown_text, False)
