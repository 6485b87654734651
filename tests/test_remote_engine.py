"""A plugin's chat engine in the chat path (register_engines, App.chat, Turn),
with small engines written here; the OpenAI plugin against real loopback
servers is in test_remote_cli.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rmm_tray import ChatEngine, EngineError, EngineUsage, hookimpl
from rmm_tray.app import App
from rmm_tray.chat.turn import Turn
from rmm_tray.engine import Done, Failed, GenParams, Token
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome
from rmm_tray.hooks.engines import engine_models, split_name


class Scripted(ChatEngine):
    name = "box"
    label = "Box"

    def __init__(self, pieces: list[str], fail_after: int | None = None, hang: threading.Event | None = None):
        self.pieces, self.fail_after, self.hang = pieces, fail_after, hang
        self.closed = threading.Event()
        self.seen: list[list[dict[str, str]]] = []

    def models(self) -> list[str]:
        return ["big", "bigger"]

    def stream(self, messages, params, *, model, cancelled):
        self.seen.append(list(messages))
        try:
            for i, piece in enumerate(self.pieces):
                if self.fail_after is not None and i == self.fail_after:
                    raise EngineError("box: the stream stopped mid-reply")
                if self.hang is not None and i == 2:
                    self.hang.wait(10)
                yield piece
            yield EngineUsage(prompt_tokens=7, completion_tokens=len(self.pieces), stop_reason="stop")
        finally:
            self.closed.set()


class Plugin:
    def __init__(self, engine: ChatEngine) -> None:
        self.engine = engine
        self.sent: list[str] = []

    @hookimpl
    def register_engines(self, register, app):
        register(self.engine)

    @hookimpl
    def before_send(self, draft, app):
        draft.text = draft.text + " (filtered)"

    @hookimpl
    def after_reply(self, draft, app):
        draft.text = draft.text.upper()


def make_app(home: Path, engine: ChatEngine) -> App:
    app = App(DataHome(home).ensure(), Config.load(home / "config.toml"), safe_mode=True)
    app.plugins.register(Plugin(engine), "test-engine", "test")
    return app


def test_split_name() -> None:
    assert split_name("box:llama-3.1-70b") == ("box", "llama-3.1-70b")
    assert split_name("box:org/model:tag") == ("box", "org/model:tag")
    assert split_name("models/x.gguf") is None
    assert split_name("folder/x:y.gguf") is None
    assert split_name(":x") is None and split_name("x:") is None


def test_a_reply_from_a_plugin_engine_goes_through_the_chat_path(home: Path) -> None:
    engine = Scripted(["Par", "is", " is", " big"])
    app = make_app(home, engine)
    assert app.resolve_model("box:big") == "box:big"
    turn = Turn(app, "Capital of France?", GenParams(max_tokens=8), model="box:big")
    events = list(turn)
    assert [e.text for e in events if isinstance(e, Token)] == ["Par", "is", " is", " big"]
    done = events[-1]
    assert isinstance(done, Done) and done.model == "box:big" and done.stop_reason == "stop"
    assert done.prompt_tokens == 7 and done.completion_tokens == 4 and done.ttft_s >= 0
    assert engine.seen[0][-1] == {"role": "user", "content": "Capital of France? (filtered)"}
    chat = app.history.load_chat(turn.chat_id)
    assert chat.model == "box:big"
    user, reply = chat.messages
    assert user.content == "Capital of France? (filtered)"
    assert reply.content == "PARIS IS BIG" and not reply.interrupted and reply.model == "box:big"
    assert reply.stats["completion_tokens"] == 4


def test_a_failure_mid_reply_keeps_the_partial_reply_interrupted(home: Path) -> None:
    app = make_app(home, Scripted(["One", " two", " three"], fail_after=2))
    turn = Turn(app, "Count", GenParams(), model="box:big")
    events = list(turn)
    assert isinstance(events[-1], Failed) and events[-1].message == "box: the stream stopped mid-reply"
    assert turn.result.error == "box: the stream stopped mid-reply"
    reply = app.history.load_chat(turn.chat_id).messages[-1]
    assert reply.content == "One two" and reply.interrupted


def test_stop_answers_at_once_and_closes_the_stream(home: Path) -> None:
    hang = threading.Event()
    engine = Scripted(["a", "b", "c", "d"], hang=hang)
    app = make_app(home, engine)
    turn = Turn(app, "Go", GenParams(), model="box:big")
    got: list[object] = []
    started = time.monotonic()
    for event in turn:
        got.append(event)
        if sum(isinstance(e, Token) for e in got) == 2:
            turn.cancel()  # the engine is silent now: Stop must not wait for it
    assert time.monotonic() - started < 5
    assert isinstance(got[-1], Done) and got[-1].stop_reason == "cancelled"
    reply = app.history.load_chat(turn.chat_id).messages[-1]
    assert reply.content == "ab" and reply.interrupted
    hang.set()
    assert engine.closed.wait(5)  # the plugin's finally ran: its connection is closed


def test_an_unknown_engine_or_continue_is_one_line(home: Path) -> None:
    app = make_app(home, Scripted(["x"]))
    with pytest.raises(EngineError, match="no engine serves 'nowhere:big'"):
        app.chat([{"role": "user", "content": "hi"}], GenParams(), model="nowhere:big")
    with pytest.raises(EngineError, match="box: Continue works with local models only"):
        app.chat([{"role": "user", "content": "hi"}], GenParams(), model="box:big",
                 continue_reply=True)


def test_engine_models_lists_each_engine_or_its_one_line() -> None:
    class Down(ChatEngine):
        name = "down"

        def models(self):
            raise EngineError("down: cannot reach http://10.0.0.9/v1")

        def stream(self, messages, params, *, model, cancelled):
            yield ""

    listed = engine_models({"box": Scripted([]), "down": Down()})
    assert listed[0].models == ["box:big", "box:bigger"] and listed[0].label == "Box"
    assert listed[1].models == [] and listed[1].error == "down: cannot reach http://10.0.0.9/v1"


def test_a_remote_table_in_config_is_not_an_unknown_setting(home: Path, caplog) -> None:
    (home / "config.toml").write_text('[[remote]]\nname = "box"\nbase_url = "http://127.0.0.1:9/v1"\n')
    with caplog.at_level("WARNING"):
        config = Config.load(home / "config.toml")
    assert config.get("remote") == [{"name": "box", "base_url": "http://127.0.0.1:9/v1"}]
    assert "unknown setting" not in caplog.text
    app = App(DataHome(home).ensure(), config)
    assert "box" in app.engines  # the first-party plugin read it


def test_a_bad_remote_table_leaves_the_app_working(home: Path, caplog) -> None:
    (home / "config.toml").write_text('[[remote]]\nname = "a b"\nbase_url = "http://x"\n')
    app = App(DataHome(home).ensure(), Config.load(home / "config.toml"))
    with caplog.at_level("WARNING"):
        assert app.engines == {}
    assert "[[remote]] number 1 needs a name of letters" in caplog.text


def test_the_popup_picks_a_remote_model_and_its_reply_lands_in_history(home: Path) -> None:
    import conftest
    from desktop_helpers import wait_for
    from rmm_tray.desktop.chat_controller import ChatController

    app = make_app(home, Scripted(["Hello", " from", " the", " box"]))
    page = conftest.Page()
    ctl = ChatController(app, page)
    ctl.refresh_engines()
    wait_for(lambda: "box:big" in ctl.state_event()["models"], 10)
    assert ctl.state_event()["models"][-2:] == ["box:big", "box:bigger"]  # the picker's list
    ctl.set_model("box:big").result(10)
    # State events also come from the background engine refresh: wait for the last one.
    wait_for(lambda: page.of("state")[-1]["model"] == "box:big", 10)
    ctl.send("Hi").result(10)
    replies = [e["message"] for e in page.of("message")
               if e["message"]["role"] == "assistant" and not e["message"]["streaming"]]
    assert replies and replies[-1]["stats"]["model"] == "box:big"
    chat = app.history.load_chat(ctl.chat_id)
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "Hi (filtered)"), ("assistant", "HELLO FROM THE BOX")]
    assert app.loaded is None  # no local model was loaded for it
    app.close()
