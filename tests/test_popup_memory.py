"""The lighter popup (rmm_tray/shell/webkit_tuning.py): what it sets, that a
person's own settings win, that RMM_WEBKIT_TUNING=0 turns it off, and, in the
running app under Xvfb, that the core no longer maps a GL driver while the popup
still draws its page. bench/desktop.py measures what it saves."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from desktop_helpers import RunningApp, Screen, wait_for
from rmm_tray.shell import webkit_tuning


def test_the_variables_are_set_where_unset_and_never_over_a_persons_own() -> None:
    env = {"WEBKIT_DISABLE_COMPOSITING_MODE": "0"}
    added = webkit_tuning.apply_env(env)
    assert env["WEBKIT_DISABLE_COMPOSITING_MODE"] == "0"
    assert "WEBKIT_DISABLE_COMPOSITING_MODE" not in added
    assert env["GDK_GL"] == "disable" and added["GDK_GL"] == "disable"
    assert env["MALLOC_ARENA_MAX"] == "2"


@pytest.mark.parametrize("off", ["0", "off", "no", "false"])
def test_the_switch_turns_it_off(off: str) -> None:
    env = {"RMM_WEBKIT_TUNING": off}
    assert webkit_tuning.apply_env(env) == {}
    assert env == {"RMM_WEBKIT_TUNING": off}


class FakeProps:
    enable_webgl = True
    enable_page_cache = True
    enable_developer_extras = False  # already off: not reported


class FakeView:
    def __init__(self) -> None:
        self.props = FakeProps()
        self.context = FakeContext()

    def get_settings(self):
        return type("S", (), {"props": self.props})()

    def get_context(self):
        return self.context


class FakeContext:
    spell = True

    def set_cache_model(self, model) -> None:
        self.model = model

    def set_spell_checking_enabled(self, on: bool) -> None:
        self.spell = on


def test_tune_turns_off_what_the_page_does_not_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RMM_WEBKIT_TUNING", raising=False)
    view = FakeView()
    done = webkit_tuning.tune(view)
    assert view.props.enable_webgl is False and view.props.enable_page_cache is False
    assert "enable_webgl" in done and "enable_developer_extras" not in done
    assert view.context.spell is False
    assert webkit_tuning.tune(None) == []


KEEP_OUT = """
import ctypes, json, os, sys
from rmm_tray.shell import webkit_tuning
done = webkit_tuning.keep_gl_out()
egl = ctypes.CDLL("libEGL.so.1")
egl.eglGetDisplay.restype = ctypes.c_void_p
egl.eglGetDisplay.argtypes = [ctypes.c_void_p]
egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
display = egl.eglGetDisplay(None)
up = bool(display) and bool(egl.eglInitialize(display, None, None))
maps = open("/proc/self/maps").read()
print(json.dumps({"done": done, "egl_up": up, "mesa": "libEGL_mesa" in maps,
                  "env": os.environ.get("__EGL_VENDOR_LIBRARY_DIRS")}))
"""


def keep_out_in_child(**env: str) -> dict:
    import json
    import subprocess
    import sys

    # Surfaceless: Mesa initialises without a display, so the check needs no X.
    clean = {k: v for k, v in os.environ.items()
             if k not in ("__EGL_VENDOR_LIBRARY_DIRS", "__EGL_VENDOR_LIBRARY_FILENAMES",
                          "RMM_WEBKIT_TUNING")}
    out = subprocess.run([sys.executable, "-c", KEEP_OUT],
                         env={**clean, "EGL_PLATFORM": "surfaceless", **env}, capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/usr/share/glvnd/egl_vendor.d").is_dir(), reason="needs libglvnd's EGL")
def test_keep_gl_out_leaves_this_process_without_an_egl_driver_and_the_environment_as_it_was() -> None:
    # Without it, the same process finds Mesa (the check can tell the two apart).
    assert keep_out_in_child(RMM_WEBKIT_TUNING="0") == {"done": False, "egl_up": True, "mesa": True,
                                                         "env": None}
    assert keep_out_in_child() == {"done": True, "egl_up": False, "mesa": False, "env": None}
    # A person's own choice of EGL drivers is left alone.
    mine = keep_out_in_child(__EGL_VENDOR_LIBRARY_DIRS="/usr/share/glvnd/egl_vendor.d")
    assert mine == {"done": False, "egl_up": True, "mesa": True,
                    "env": "/usr/share/glvnd/egl_vendor.d"}


def maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as fh:
        return fh.read()


def app_processes(app: RunningApp) -> list[psutil.Process]:
    popup = psutil.Process(app.status()["popup_pid"])
    return [psutil.Process(app.proc.pid), popup, *popup.children(recursive=True)]


@pytest.mark.desktop
@pytest.mark.parametrize("tuning", ["on", "off"])
def test_the_tray_maps_no_gl_driver_and_the_popup_still_draws(home_with_model: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                tuning: str) -> None:
    from PIL import Image

    monkeypatch.setenv("RMM_WEBKIT_TUNING", "1" if tuning == "on" else "0")
    for var in webkit_tuning.ENV:
        monkeypatch.delenv(var, raising=False)
    screen = Screen()
    app = RunningApp(screen, home_with_model, "--no-hotkey")
    try:
        app.cli("show")
        wait_for(screen.visible_popups, 10, "the popup to show")
        wait_for(lambda: app.probe("focus") == "input", 15, "the page, focus in its input")
        core, popup, *web = app_processes(app)
        assert any(p.name().startswith("WebKitWebProc") for p in web)
        gl_in_core = "swrast_dri" in maps(core.pid) or "libLLVM" in maps(core.pid)
        assert gl_in_core is (tuning == "off")
        # The popup's own process (WebKit's UI side) opens no GL driver either; the
        # web process still does (it aborts without EGL), and draws the page.
        gl_in_popup = "libEGL_mesa" in maps(popup.pid) or "libLLVM" in maps(popup.pid)
        assert gl_in_popup is (tuning == "off")
        assert "__EGL_VENDOR_LIBRARY_DIRS" not in popup.environ()
        environ = popup.environ()
        assert (environ.get("WEBKIT_DISABLE_COMPOSITING_MODE") == "1") is (tuning == "on")
        # The page is drawn: the header's gradient is on the screen.
        def drawn() -> bool:
            shot = Image.open(screen.screenshot(tmp_path / "popup.png")).convert("RGB")
            colours = shot.resize((320, 200)).getcolors(320 * 200) or []
            return sum(n for n, (r, g, b) in colours if r > 90 and b > 200 and g < 110) > 100

        wait_for(drawn, 15, "the page's header on the screen")
    finally:
        app.close()
        screen.close()
    assert os.environ.get("RMM_WEBKIT_TUNING") == ("1" if tuning == "on" else "0")
