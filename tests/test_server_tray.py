"""The tray's Local API item: the real tray app under Xvfb, the menu's own
callbacks, and the address answering (or not) as the menu says."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx2 as httpx
import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = [pytest.mark.desktop, pytest.mark.integration]



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_port(home: Path, extra: str = "") -> int:
    port = free_port()
    with (home / "config.toml").open("a") as f:
        f.write(f"[server]\nport = {port}\n{extra}")
    return port


def answers(url: str) -> bool:
    try:
        return httpx.get(url + "/models", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_the_menu_turns_the_api_on_and_off(screen: Screen, home_with_model: Path) -> None:
    port = with_port(home_with_model)
    url = f"http://127.0.0.1:{port}/v1"
    app = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    try:
        menu = app.tray("Local API")
        assert menu["entries"] == [f"On — {url}", "Off"]
        assert app.tray("Local API", "Off")["checked"] is True
        assert not answers(url)

        app.tray("Local API", f"On — {url}", click=True)
        wait_for(lambda: app.status()["api"] == url, 30, "the API to start")
        assert answers(url)
        assert app.tray("Local API", f"On — {url}")["checked"] is True
        # The tray's own engine answers: one load, shared with the popup.
        reply = httpx.post(url + "/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8})
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        status = app.status()
        assert status["model"] == "gemma-3-270m-q4_k_m.gguf" and status["loads"] == 1

        app.tray("Local API", "Off", click=True)
        wait_for(lambda: app.status()["api"] is None, 30, "the API to stop")
        wait_for(lambda: not answers(url), 10, "the address to stop answering")
        assert app.tray("Local API", "Off")["checked"] is True
    finally:
        app.close()


def test_a_port_in_use_is_said_and_shown_in_the_menu(screen: Screen, home: Path) -> None:
    (home / "state.json").write_text('{"starter_installed": "gemma-3-270m-q4_k_m.gguf"}\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with (home / "config.toml").open("a") as f:
            f.write(f"[server]\nport = {port}\n")
        app = RunningApp(screen, home, "--no-tray", "--no-hotkey")
        try:
            app.tray("Local API", f"On — http://127.0.0.1:{port}/v1", click=True)
            notice = wait_for(lambda: app.status()["notice"], 30, "the notice")
            assert "already in use" in notice and "\n" not in notice
            assert app.status()["api"] is None
            entries = app.tray("Local API")["entries"]
            assert any("already in use" in e for e in entries)
            assert app.tray("Local API", "Off")["checked"] is True
        finally:
            app.close()


def test_enabled_in_config_starts_with_the_tray(screen: Screen, home: Path) -> None:
    (home / "state.json").write_text('{"starter_installed": "gemma-3-270m-q4_k_m.gguf"}\n')
    port = with_port(home, "enabled = true\n")
    url = f"http://127.0.0.1:{port}/v1"
    app = RunningApp(screen, home, "--no-tray", "--no-hotkey")
    try:
        wait_for(lambda: answers(url), 30, "the API to answer")
        assert app.status()["api"] == url
    finally:
        app.close()
    assert not answers(url), "quitting the tray stops the API"


@pytest.mark.slow
def test_a_model_an_api_client_names_shows_in_the_open_popup(screen: Screen, home_with_model: Path) -> None:
    import openai

    starter = next((home_with_model / "models").glob("*.gguf"))
    (home_with_model / "models" / "other.gguf").symlink_to(starter.resolve())
    port = with_port(home_with_model, "enabled = true\n")
    app = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    try:
        app.cli("show")
        wait_for(screen.visible_popups, 15, "the popup")
        state = wait_for(lambda: (lambda s: s if s and s.endswith("|" + starter.name) else None)(
            app.probe("state")), 30, "the picker on the default model")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", timeout=120)
        wait_for(lambda: answers(str(client.base_url).rstrip("/")), 30, "the API to answer")
        reply = client.chat.completions.create(model="other.gguf", max_tokens=4,
                                               messages=[{"role": "user", "content": "Hi"}])
        assert reply.model == "other.gguf"
        # Nobody touched the popup: the switch the API asked for shows in it.
        shown = wait_for(lambda: (lambda s: s if s and s.endswith("|other.gguf") else None)(
            app.probe("state")), 15, f"the picker to follow the API's model (was {state!r})")
        assert shown.split("|")[0].strip() != ""
        assert app.status()["model"] == "other.gguf"
    finally:
        app.close()
