"""A plugin that raises, in the running desktop app: its error is in
logs/rmm-tray.log (with the process that saw it), `rmm-tray logs` shows it, the
Settings view lists the plugin as failed, and the app keeps working. Under Xvfb
with real key events."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from desktop_helpers import RunningApp, Screen, wait_for

pytestmark = pytest.mark.desktop


@pytest.fixture()
def app(home_with_model: Path):
    (home_with_model / "plugins" / "broken.py").write_text(textwrap.dedent("""
        from rmm_tray import hookimpl

        @hookimpl
        def register_prompt_templates(register):
            raise RuntimeError("the plugin broke")
    """))
    screen = Screen()
    running = RunningApp(screen, home_with_model, "--no-tray", "--no-hotkey")
    yield running
    running.close()
    screen.close()


def test_a_plugin_that_raises_is_in_the_log_and_in_settings(app: RunningApp, home_with_model: Path) -> None:
    log_file = home_with_model / "logs" / "rmm-tray.log"
    logged = wait_for(lambda: log_file.exists() and "the plugin broke" in log_file.read_text()
                      and log_file.read_text(), 30, "the plugin's error in the log")
    line = next(x for x in logged.splitlines() if "plugin broken failed in register_prompt_templates" in x)
    assert f" ERROR [core {app.proc.pid}] " in line, line  # the running app's own process
    assert "the plugin broke" in app.cli("logs", "--lines", "20").stdout

    app.cli("show")
    wait_for(app.screen.visible_popups, 10, "the popup to show")
    wait_for(lambda: app.probe("focus") == "input", 10, "focus in the input")
    app.screen.key("ctrl+comma")
    plugins = wait_for(lambda: (app.probe("settings_view") or {}).get("plugins"), 10, "the Settings view")
    broken = next(p for p in plugins if p["name"] == "broken")
    assert "the plugin broke" in broken["status"], plugins
    assert app.status()["popup_connected"], "the app kept running"
