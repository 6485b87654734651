"""A lighter popup: what GTK and WebKitGTK allow to cut the memory of a window
that shows one local page and sits hidden most of the day.

Two parts, both measured by bench/desktop.py (its "memory" rows, with and
without this module):

- ``apply_env()``, before GTK starts in a process: GDK's own GL (it opens a GL
  driver at display start-up just to choose visuals, which maps Mesa and its
  LLVM into the tray), WebKit's compositing mode and Skia's GPU painting are
  turned off, and glibc keeps two malloc arenas. The popup draws a chat page;
  nothing on it needs the GPU.
- ``keep_gl_out()``, in the popup's own process before GTK: WebKit's UI side
  opens an EGL display it never draws with (the page is painted by the web
  process into shared memory), which maps Mesa's driver and its LLVM (~20 MiB
  of PSS, most of it LLVM's relocated tables, private to each process). EGL's
  vendor list is read once per process, so it is read here with no vendors;
  the web process, started later, still gets Mesa (it aborts without EGL).
- ``tune(webview_widget)``, on the GTK thread before the page loads: the web
  features the page never uses are off (WebGL, media, Web Audio, the page
  cache, developer extras, spell checking) and the cache model is the one for a
  local document viewer.

``RMM_WEBKIT_TUNING=0`` turns both off, for the benchmark's "before" rows and
for anyone who suspects the tuning of a rendering problem. A variable the
person set themselves is never overwritten.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any

log = logging.getLogger(__name__)

SWITCH = "RMM_WEBKIT_TUNING"

ENV = {
    "GDK_GL": "disable",
    "WEBKIT_DISABLE_COMPOSITING_MODE": "1",
    "WEBKIT_DISABLE_DMABUF_RENDERER": "1",
    # Skia paints on the CPU: no GL context per painting thread for a page of text.
    "WEBKIT_SKIA_ENABLE_CPU_RENDERING": "1",
    # glibc's read at start-up, so this reaches the popup and its WebKit processes
    # (started after): one arena per thread is memory a mostly idle view never uses.
    "MALLOC_ARENA_MAX": "2",
}

# Settings of WebKitSettings the page does not use; a name this WebKit lacks
# (they come and go between versions) is skipped. Deprecated ones (DNS
# prefetching, hyperlink auditing, the offline cache) already do nothing and
# only warn when touched; pywebview's private mode turns web storage off.
OFF = (
    "enable_webgl",
    "enable_media",
    "enable_media_stream",
    "enable_mediasource",
    "enable_media_capabilities",
    "enable_encrypted_media",
    "enable_webaudio",
    "enable_webrtc",
    "enable_page_cache",
    "enable_developer_extras",
    "enable_back_forward_navigation_gestures",
)


def enabled(environ: MutableMapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(SWITCH, "1").strip().lower() not in ("0", "off", "no", "false")


def apply_env(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the variables above where unset; what was set. Call before GTK is
    imported: GDK reads GDK_GL once, at start-up."""
    env = os.environ if environ is None else environ
    if not enabled(env):
        return {}
    added = {k: v for k, v in ENV.items() if k not in env}
    env.update(added)
    return added


# libglvnd's: the folders it reads EGL vendors from, once per process.
EGL_VENDOR_DIRS = "__EGL_VENDOR_LIBRARY_DIRS"
EGL_VENDOR_FILES = "__EGL_VENDOR_LIBRARY_FILENAMES"
EGL_EXTENSIONS = 0x3055


def keep_gl_out(environ: MutableMapping[str, str] | None = None) -> bool:
    """Let this process's EGL find no driver, leaving the environment as it was
    for the processes it starts; whether it was done. Call before GTK and
    WebKit are imported, in the popup's process only."""
    env = os.environ if environ is None else environ
    if not enabled(env) or EGL_VENDOR_DIRS in env or EGL_VENDOR_FILES in env:
        return False  # off, or the person chose their EGL drivers themselves
    try:
        import ctypes

        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return False  # no EGL here: nothing to keep out
    env[EGL_VENDOR_DIRS] = os.devnull  # a path with no vendor files under it
    try:
        # Any EGL call makes libglvnd read its vendor list: this one opens no display.
        egl.eglQueryString.restype = ctypes.c_char_p
        egl.eglQueryString(None, EGL_EXTENSIONS)
    except AttributeError:
        return False
    finally:
        del env[EGL_VENDOR_DIRS]
    return True


def tune(webview_widget: Any) -> list[str]:
    """Turn off what the page does not use; the names of what was turned off.
    Runs on the GTK thread, before the first load (pywebview's before_show)."""
    if webview_widget is None or not enabled():
        return []
    done: list[str] = []
    props = webview_widget.get_settings().props
    for name in OFF:
        try:
            if getattr(props, name):
                setattr(props, name, False)
                done.append(name)
        except (AttributeError, TypeError):
            continue  # not in this WebKit
    try:
        import gi

        try:  # the version pywebview loaded, else the one it prefers
            gi.require_version("WebKit2", "4.1")
        except ValueError:
            pass
        from gi.repository import WebKit2

        props.hardware_acceleration_policy = WebKit2.HardwareAccelerationPolicy.NEVER
        done.append("hardware_acceleration_policy=NEVER")
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    context = webview_widget.get_context()
    try:
        from gi.repository import WebKit2

        context.set_cache_model(WebKit2.CacheModel.DOCUMENT_VIEWER)
        done.append("cache_model=DOCUMENT_VIEWER")
    except (ImportError, AttributeError, TypeError):
        pass
    try:
        context.set_spell_checking_enabled(False)
        done.append("spell_checking")
    except (AttributeError, TypeError):
        pass
    log.debug("webkit tuning: %s", ", ".join(done))
    return done


def trim() -> None:
    """Hand the heap's free pages back to the system (glibc): start-up and a
    page load leave megabytes free inside malloc that a view at rest never
    reuses. Elsewhere, or with the tuning off, nothing."""
    if not enabled():
        return
    try:
        import ctypes
        import gc

        gc.collect()  # start-up's cycles first: their pages are the ones to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass

