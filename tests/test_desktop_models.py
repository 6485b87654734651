"""The Models view as a person uses it: a real window under Xvfb, keys from
xdotool, the real Hugging Face client against a loopback Hub (HF_ENDPOINT) that
serves the real starter model, then a chat with the model just downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import FakeHub

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = pytest.mark.desktop

REPO_ID = "testorg/tiny-chat-GGUF"
FILE = "tiny-chat-Q4_K_M.gguf"
CARD = "Tiny chat is Gemma 3 270M served by the test hub, small enough to download in seconds."
# 253 MB at 40 MB/s: long enough for a probe to see the bar part-way, short enough for a test.
RATE = 40_000_000



@pytest.fixture()
def hub(starter_model: Path):
    with FakeHub() as hub:
        hub.add_repo(REPO_ID, {
            FILE: starter_model,
            "tiny-chat-Q8_0.gguf": b"GGUF" + bytes(64),
            "tiny-chat-BF16.gguf": b"GGUF" + bytes(64),
        }, card=CARD, license="gemma", downloads=12_345, likes=67)
        # Listed with sizes that make them a better fit and one too big; never downloaded.
        hub.fake_size(REPO_ID, "tiny-chat-Q8_0.gguf", 290_000_000)
        hub.fake_size(REPO_ID, "tiny-chat-BF16.gguf", 4_000_000_000_000)
        hub.add_repo("otherorg/unrelated-GGUF", {"unrelated-Q8_0.gguf": b"GGUF" + bytes(64)}, downloads=10)
        yield hub


@pytest.fixture()
def app(screen: Screen, hub: FakeHub, home_with_model: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    # RunningApp hands its own environment to the app: the Hub client in the app
    # finds the fake hub through HF_ENDPOINT, and keeps its cache out of ~.
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    running = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    yield running
    running.close()


def models(app: RunningApp) -> dict:
    return app.probe("models")


def view(app: RunningApp) -> dict:
    return app.probe("view")


@pytest.mark.slow
def test_search_download_use_and_chat(
    screen: Screen, hub: FakeHub, app: RunningApp, starter_model: Path
) -> None:
    # The tray's "Model ▸ Get models…" opens the popup on the Models view, search box focused.
    assert app.tray("Model", "Get models…", click=True)["ok"]
    wait_for(screen.visible_popups, 10, "the popup to show")
    wait_for(lambda: view(app) == {**view(app), "view": "models", "focus": "models-query"}, 10,
             "the Models view with the search box focused")
    wait_for(lambda: set(models(app)["results"]) == {REPO_ID, "otherorg/unrelated-GGUF"}, 20,
             "popular models listed on opening")

    screen.type("tiny")
    screen.key("Return")
    wait_for(lambda: models(app)["results"] == [REPO_ID], 20, "the search results")
    screen.key("Down")
    wait_for(lambda: view(app)["focus"] == "open", 5, "the first result focused")
    screen.key("Return")

    repo = wait_for(lambda: models(app)["repo"] if (models(app)["repo"] or {}).get("files") else None,
                    20, "the repository's files")
    assert repo["id"] == REPO_ID and repo["license"] == "licence: gemma" and repo["summary"] == CARD
    files = {f["name"]: f for f in repo["files"]}
    assert [f["name"] for f in repo["files"]] == [FILE, "tiny-chat-Q8_0.gguf", "tiny-chat-BF16.gguf"]
    assert files[FILE] == {"name": FILE, "fit": "fits", "recommended": False, "button": "Download"}
    assert files["tiny-chat-Q8_0.gguf"]["recommended"] is True, "the best quantization that fits"
    assert files["tiny-chat-BF16.gguf"]["fit"] == "too big"
    # Focus starts on the recommended file; Up picks the one the hub really serves.
    wait_for(lambda: view(app)["focusFile"] == "tiny-chat-Q8_0.gguf", 5, "the recommended file focused")
    screen.key("Up")
    wait_for(lambda: view(app)["focusFile"] == FILE, 5, "Up to move to the Q4_K_M file")

    hub.throttle(RATE)
    screen.key("Return")
    seen: list[dict] = []
    tooltips: list[str] = []

    def part_way() -> bool:
        items = models(app)["downloads"]
        seen.extend(items)
        tooltips.append(app.status()["tooltip"])
        return any(d["state"] == "downloading" and 0 < d["pct"] < 100 and "MB/s" in d["text"]
                   for d in items)

    wait_for(part_way, 20, "a progress bar part-way, with its rate")
    moving = next(d for d in seen if d["state"] == "downloading" and "MB/s" in d["text"])
    assert moving["name"] == FILE and " % · " in moving["text"] and " left" in moving["text"], moving
    assert any(t.startswith("RunMyModel · downloading tiny-chat-Q4_K_M.gguf ") and " % · " in t
               for t in tooltips), tooltips
    wait_for(lambda: view(app)["focusText"] == "Cancel", 5, "the file's button to offer Cancel")

    wait_for(lambda: [d["state"] for d in models(app)["downloads"]] == ["done"], 40, "the download")
    local = f"{REPO_ID}/{FILE}"
    wait_for(lambda: local in [m["name"] for m in models(app)["local"]], 10, "the model in the list")
    wait_for(lambda: local in view(app)["picker"], 10, "the model in the chat's picker")
    assert (app.home / "models" / REPO_ID / FILE).stat().st_size == starter_model.stat().st_size
    wait_for(lambda: "downloading" not in app.status()["tooltip"], 5, "the tooltip back to normal")

    # The same button, still focused, now says Use: it loads the model and goes to the chat.
    wait_for(lambda: view(app)["focusText"] == "Use", 10, "the file's button to offer Use")
    screen.key("Return")
    wait_for(lambda: view(app)["view"] == "chat" and view(app)["focus"] == "input", 10, "back to the chat")
    wait_for(lambda: app.status()["model"] == f"{REPO_ID}/{FILE}" and app.status()["state"] == "idle", 30,
             "the downloaded model loaded")
    screen.type("Hello")
    screen.key("Return")

    def reply() -> list | None:
        msgs = app.probe("messages")
        done = msgs and msgs[-1]["role"] == "assistant" and not msgs[-1]["streaming"]
        return msgs if done and msgs[-1]["text"].strip() else None

    wait_for(reply, 60, "the reply from the new model")
    assert app.status()["model"] == f"{REPO_ID}/{FILE}", "named by its path in models/"

    # Ctrl+M switches views both ways; Esc still hides the popup.
    screen.key("ctrl+m")
    wait_for(lambda: view(app)["view"] == "models", 5, "Ctrl+M to the Models view")
    screen.key("ctrl+m")
    wait_for(lambda: view(app)["view"] == "chat", 5, "Ctrl+M back to the chat")
    screen.key("Escape")
    wait_for(lambda: not screen.visible_popups(), 10, "Esc to hide the popup")



def tab_to(screen: Screen, app: RunningApp, text: str, limit: int = 8) -> None:
    """Tab until the focused button says ``text``."""
    for _ in range(limit):
        if view(app)["focusText"] == text:
            return
        screen.key("Tab")
    wait_for(lambda: view(app)["focusText"] == text, 2, f"Tab to reach {text!r}")


def open_local_pane(screen: Screen, app: RunningApp, starter: str) -> None:
    """Tray "Get models…", then by keyboard to "On this computer", where the
    starter model is listed loaded and the default."""
    app.tray("Model", "Get models…", click=True)
    wait_for(lambda: view(app)["focus"] == "models-query", 10, "the Models view")
    screen.key("shift+Tab")
    wait_for(lambda: view(app)["focus"] == "pane-browse", 5, "the pane tabs")
    screen.key("Right")
    wait_for(lambda: models(app)["local"] == [{"name": starter, "loaded": True, "default": True}], 10,
             "the model, loaded and the default, on the other pane")


@pytest.mark.slow
def test_delete_asks_first_and_unloads_the_model(
    screen: Screen, app: RunningApp, home_with_model: Path, starter_model: Path
) -> None:
    starter = starter_model.name
    app.tray("Model", starter, click=True)
    wait_for(lambda: app.status()["model"] == starter and app.status()["state"] == "idle", 30, "load")
    open_local_pane(screen, app, starter)

    tab_to(screen, app, "Delete")
    screen.key("Return")
    wait_for(lambda: view(app)["focus"] == "confirm-cancel", 5, "the question, Cancel focused")
    screen.key("Escape")  # closes the question, not the popup
    wait_for(lambda: view(app)["focus"] != "confirm-cancel", 5, "the question closed")
    assert screen.visible_popups() and app.status()["model"] == starter

    tab_to(screen, app, "Delete")
    screen.key("Return")
    wait_for(lambda: view(app)["focus"] == "confirm-cancel", 5, "asked again")
    screen.key("Tab")
    wait_for(lambda: view(app)["focus"] == "confirm-ok", 5, "Tab to the Remove button")
    screen.key("Return")
    wait_for(lambda: models(app)["local"] == [], 10, "the model gone from the list")
    assert app.status()["model"] is None, "unloaded before it was removed"
    assert not (home_with_model / "models" / starter).exists() and starter_model.exists(), \
        "a linked model loses only its link"
    # Only the "No models yet" placeholder (value "") is left to pick.
    wait_for(lambda: view(app)["picker"] == [""], 5, "the chat's picker follows")


@pytest.mark.slow
def test_model_settings_from_the_keyboard(
    screen: Screen, app: RunningApp, home_with_model: Path, starter_model: Path
) -> None:
    starter = starter_model.name
    app.tray("Model", starter, click=True)
    wait_for(lambda: app.status()["n_ctx"] == 1024 and app.status()["state"] == "idle", 30,
             "loaded at [model]'s context")
    open_local_pane(screen, app, starter)

    tab_to(screen, app, "Settings")
    screen.key("Return")
    wait_for(lambda: view(app)["focus"] == "set-context_length", 5, "the form, on the context length")
    form = app.probe("settings")
    assert form["name"] == starter and form["trained"] == "trained for 32768" and form["error"] is None
    assert form["fields"]["context_length"] == {"value": "", "placeholder": "1024"}, "the effective value"
    assert form["fields"]["chat_template"]["placeholder"] == "the model's own"
    screen.key("Escape")  # closes the form, not the popup
    wait_for(lambda: app.probe("settings") is None and view(app)["focus"] == "settings", 5,
             "the form closed, its button focused")
    assert screen.visible_popups()

    screen.key("Return")
    wait_for(lambda: view(app)["focus"] == "set-context_length", 5, "the form again")
    screen.key("minus", "5")  # xdotool type would read "-5" as an option
    screen.key("Return")
    wait_for(lambda: (app.probe("settings") or {}).get("error") ==
             "Context length must be at least 256 tokens, got '-5'", 5, "the refusal, in the form")
    screen.key("ctrl+a")
    screen.type("512")
    screen.key("Tab", "Tab", "Tab")
    wait_for(lambda: view(app)["focus"] == "set-temperature", 5, "Tab to the temperature")
    screen.type("0")
    screen.key("Return")
    wait_for(lambda: app.probe("settings") is None, 5, "Enter to save and close")
    text = (home_with_model / "config.toml").read_text()
    assert f'[models."{starter}"]\ncontext_length = 512\ntemperature = 0.0\n' in text, text
    shown = app.cli("models", "set", starter, "--json")
    own = {"context_length": 512, "temperature": 0.0}
    assert json.loads(shown.stdout) == {"name": starter, "settings": own}, "the CLI reads the same"

    # No restart: the next reply reloads the model at the new context.
    screen.key("ctrl+m")
    wait_for(lambda: view(app) == {**view(app), "view": "chat", "focus": "input"}, 5, "the chat")
    screen.type("Hello")
    screen.key("Return")
    wait_for(lambda: (lambda m: m and m[-1]["role"] == "assistant" and not m[-1]["streaming"]
                      and m[-1]["text"].strip())(app.probe("messages")), 60, "the reply")
    status = app.status()
    assert (status["model"], status["n_ctx"], status["loads"]) == (starter, 512, 2), status
