"""One page→core table: the popup's js_api and the core's dispatch both come
from page_api.PAGE_API; the core checks and converts the arguments' kinds and
sends no reply."""

from __future__ import annotations

import inspect
import re
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import REPO
from rmm_tray.desktop import page_api
from rmm_tray.desktop.chat_controller import ChatController
from rmm_tray.desktop.history_controller import HistoryController
from rmm_tray.desktop.models_controller import ModelsController
from rmm_tray.desktop.page_api import PAGE_API, POPUP_LOCAL, checked_call
from rmm_tray.desktop.prompts_controller import PromptsController
from rmm_tray.desktop.settings_controller import SettingsController
from rmm_tray.desktop.welcome import WelcomeController
from rmm_tray.errors import RmmError


def test_every_entry_names_a_real_method_with_matching_parameters() -> None:
    from rmm_tray.shell.desktop import DesktopApp

    targets = {page_api.CHAT: ChatController, page_api.MODELS: ModelsController,
               page_api.DESKTOP: DesktopApp, page_api.SETTINGS: SettingsController,
               page_api.PROMPTS: PromptsController, page_api.WELCOME: WelcomeController,
               page_api.HISTORY: HistoryController}
    for name, entry in PAGE_API.items():
        method = getattr(targets[entry.target], entry.method)
        params = [p for p in inspect.signature(method).parameters if p != "self"]
        assert len(params) == len(entry.args), name
        assert all(kind in page_api.KINDS for _, kind in entry.args), name


def test_the_popup_api_is_derived_from_the_table() -> None:
    from rmm_tray.shell.popup_process import JsApi

    exposed = {n for n in dir(JsApi) if not n.startswith("_") and callable(getattr(JsApi, n))}
    assert exposed == set(PAGE_API) | set(POPUP_LOCAL)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    api = JsApi(SimpleNamespace(call=lambda m, *a: sent.append((m, a))))  # type: ignore[arg-type]
    # pywebview reads the parameter names from the signature.
    assert inspect.getfullargspec(api.models_save_settings).args == ["self", "name", "values", "unset"]
    api.models_save_settings("m.gguf", {"temperature": 0.5}, ["top_p"])
    api.send("hi")
    assert sent == [("models_save_settings", ("m.gguf", {"temperature": 0.5}, ["top_p"])),
                    ("send", ("hi",))]


def test_what_the_page_calls_is_in_the_table() -> None:
    called = set()
    for js in ("app.js", "models.js", "settings.js", "prompts.js", "welcome.js"):
        called |= set(re.findall(r'call\("([a-z_]+)"', (REPO / "web" / js).read_text()))
    assert called <= set(PAGE_API) | set(POPUP_LOCAL), called - set(PAGE_API) - set(POPUP_LOCAL)


def test_kinds_are_checked_and_converted() -> None:
    entry, args = checked_call("models_save_settings", ["m", {"a": 1}, ["b"]])
    assert (entry.target, entry.method, args) == ("models", "save_settings", ["m", {"a": 1}, ["b"]])
    assert checked_call("models_save_settings", ["m", None, None])[1] == ["m", {}, []]
    assert checked_call("send", [12])[1] == ["12"]
    for bad in (["send", [None]], ["send", [{"x": 1}]], ["send", []], ["send", ["a", "b"]],
                ["models_save_settings", ["m", [1], []]], ["models_save_settings", ["m", {}, "x"]],
                ["eval", ["1"]], ["hide", []], ["copy", ["x"]], [None, []], ["send", "hi"]):
        with pytest.raises(RmmError):
            checked_call(*bad)


class FakeDesktop:
    """What DesktopApp._js needs: the two controllers and the popup link."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.calls: list[tuple] = []
        self.sent: list[dict] = []
        ctl = SimpleNamespace(emit=self.events.append,
                              send=lambda text: self.calls.append(("send", text)))
        models = SimpleNamespace(emit=lambda e: self.events.append({**e, "from": "models"}),
                                 save_settings=lambda *a: self.calls.append(("save", *a)))
        self.controller, self.models = ctl, models
        self.popup = SimpleNamespace(send=lambda m: self.sent.append(m) or True)


def test_the_core_dispatches_from_the_table_and_sends_no_reply() -> None:
    from rmm_tray.shell.desktop import DesktopApp

    fake = FakeDesktop()
    js = DesktopApp._js
    js(fake, {"cmd": "js", "method": "send", "args": ["hello"]})  # type: ignore[arg-type]
    js(fake, {"cmd": "js", "method": "models_save_settings",  # type: ignore[arg-type]
              "args": ["m.gguf", {"temperature": "0.5"}, []]})
    assert fake.calls == [("send", "hello"), ("save", "m.gguf", {"temperature": "0.5"}, [])]
    js(fake, {"cmd": "js", "method": "eval", "args": ["1"]})  # type: ignore[arg-type]
    js(fake, {"cmd": "js", "method": "models_delete", "args": [{"x": 1}]})  # type: ignore[arg-type]
    assert fake.events[0] == {"type": "error", "message": "the page may not call 'eval'"}
    assert fake.events[1]["type"] == "models.error" and "expected text" in fake.events[1]["message"]
    assert fake.sent == [], "nobody waits for a reply, so none is sent"
