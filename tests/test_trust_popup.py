"""The popup keeps the person's text and offers actions when there is no model;
the tray icon, the popup and `status` agree after a failure; the model picker
follows the models folder. No engine, no window: the core side of each."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

import conftest
from rmm_tray.app import App
from rmm_tray.desktop.chat_controller import ChatController
from rmm_tray.desktop.page_api import PAGE_API
from rmm_tray.engine.types import EngineStatus
from rmm_tray.models.starter import STARTER_FILE, STATE_FILE


@pytest.fixture()
def bare_home(home: Path) -> Path:
    """No models, and no starter model copied in on the first start."""
    (home / STATE_FILE).write_text(json.dumps({"starter_installed": STARTER_FILE}))
    return home


class FakeTray:
    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def show_state(self, state: str, tooltip: str, *, refresh_menu: bool = True) -> None:
        self.shown.append((state, tooltip))

    def notify(self, text: str) -> None:
        self.notes.append(text)

    def refresh(self) -> None:
        pass


class IdleEngine:
    """Stands in for the engine: idle, nothing loaded, unload succeeds."""

    loaded = None
    loads = 0

    def status(self) -> EngineStatus:
        return EngineStatus("idle", None)

    def unload(self) -> Future:
        done: Future = Future()
        done.set_result(None)
        return done

    def close(self) -> None:
        pass


def test_sending_without_a_model_keeps_the_text_and_offers_actions(bare_home: Path) -> None:
    app = App.open()
    page = conftest.Page()
    ctl = ChatController(app, page)
    try:
        ctl.send("my long carefully typed question").result(10)
        [error] = page.of("error")
        assert error["text"] == "my long carefully typed question", "the page puts it back"
        assert error["actions"] == ["get_model", "import_file"]
        assert "rmm-tray" not in error["message"], "a GUI user is not sent to the CLI"
        assert not page.of("message") and app.history.list_chats() == [], "nothing half-stored"
        assert ctl.status() == "idle" and ctl.last_error is None, "no model is not a failure"
        assert not app.engine_started
    finally:
        app.close()


def test_the_page_knows_both_actions() -> None:
    js = (conftest.REPO / "web" / "app.js").read_text(encoding="utf-8")
    for action, label in (("get_model", "Get a model"), ("import_file", "Import a file…")):
        assert action in js and label in js
    assert "refresh" in PAGE_API and PAGE_API["refresh"].method == "refresh_state"


def test_after_a_failed_load_icon_popup_and_status_agree_until_the_next_success(bare_home: Path) -> None:
    from rmm_tray.shell.desktop import DesktopApp

    app = App.open()
    app._engine = IdleEngine()  # type: ignore[assignment]
    desk = DesktopApp(app, use_hotkey=False, use_tray=False)
    page = conftest.Page()
    desk.controller.emit = page
    desk.tray = FakeTray()
    try:
        # What a failed load leaves behind.
        desk.controller.last_error = "could not load broken.gguf: not a GGUF file"
        desk.controller.push_state()
        state = page.last("state")
        assert state["status"] == "error" and state["error"].startswith("could not load")
        assert desk.tray.shown[-1][0] == "error"
        assert "could not load broken.gguf" in desk.tray.shown[-1][1], "the tooltip says why it is red"
        status = desk.status()
        assert status["state"] == "error" and status["error"].startswith("could not load")
        assert "idle" not in status["tooltip"]
        assert desk.tray.notes == ["could not load broken.gguf: not a GGUF file"]

        desk.controller.unload()  # the next action that succeeds clears it everywhere
        assert page.last("state")["status"] == "idle" and page.last("state")["error"] is None
        assert desk.tray.shown[-1][0] == "idle" and desk.status()["state"] == "idle"
        assert desk.tray.shown[-1][1].endswith("idle")
    finally:
        desk.work.close()
        app.close()


class FastQuit(threading.Event):
    """The watcher's 3 s pause, shortened so the test takes a moment."""

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(0.02)


def test_the_model_picker_follows_the_models_folder(bare_home: Path) -> None:
    from rmm_tray.shell.desktop import DesktopApp

    app = App.open()
    desk = DesktopApp(app, use_hotkey=False, use_tray=False)
    page = conftest.Page()
    desk.controller.emit = page
    desk._quit = FastQuit()
    watcher = threading.Thread(target=desk._watch_for_menu_changes, daemon=True)
    watcher.start()
    try:
        time.sleep(0.1)  # let the watcher take its first look at models/
        (bare_home / "models" / "added-from-cli.Q4_K_M.gguf").write_bytes(b"GGUF" + bytes(64))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
                "added-from-cli.Q4_K_M.gguf" in e["models"] for e in page.of("state")):
            time.sleep(0.02)
        assert any("added-from-cli.Q4_K_M.gguf" in e["models"] for e in page.of("state")), page.events

        (bare_home / "models" / "added-from-cli.Q4_K_M.gguf").unlink()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and page.last("state")["models"]:
            time.sleep(0.02)
        assert page.last("state")["models"] == [], "a removed model leaves the picker"

        before = len(page.of("state"))
        desk.controller.refresh_state()  # what the page asks for on every show
        assert len(page.of("state")) == before + 1
    finally:
        desk._quit.set()
        watcher.join(5)
        desk.work.close()
        app.close()
