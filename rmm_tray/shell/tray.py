"""The tray icon and its menu (pystray). Menu callbacks only hand work to the
app; they never block and never touch the engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pystray

from rmm_tray.errors import report
from rmm_tray.shell import icons

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.chat.templates import PromptTemplate

log = logging.getLogger(__name__)


class TrayActions(Protocol):
    """What the menu needs of the desktop app (``shell.desktop.DesktopApp`` is one)."""

    app: "App"
    hotkey_label: str
    local_api: Any

    def model_names(self) -> list[str]: ...
    def current_model_name(self) -> str | None: ...
    def toggle_popup(self) -> None: ...
    def choose_model(self, name: str) -> None: ...
    def unload_model(self) -> None: ...
    def get_models(self) -> None: ...
    def open_chat(self, chat_id: str) -> None: ...
    def use_prompt(self, template: "PromptTemplate") -> None: ...
    def run_plugin(self, action: Any) -> None: ...
    def open_settings(self) -> None: ...
    def set_local_api(self, on: bool) -> None: ...
    def open_data_folder(self) -> None: ...
    def quit(self) -> None: ...


def _safe(name: str, fn: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception as exc:  # a menu callback is an edge: log, keep the tray alive
            report(log, f"tray action {name}", exc)

    return run


def _checked(desktop: "TrayActions", name: str) -> Callable[[Any], bool]:
    return lambda item: desktop.current_model_name() == name


def model_items(desktop: "TrayActions") -> list[pystray.MenuItem]:
    items = [
        pystray.MenuItem(name, _safe("model", lambda n=name: desktop.choose_model(n)),
                         checked=_checked(desktop, name), radio=True)
        for name in desktop.model_names()
    ]
    if not items:
        items.append(pystray.MenuItem("No models yet", None, enabled=False))
    return [
        *items,
        pystray.Menu.SEPARATOR,
        pystray.MenuItem("Unload model", _safe("unload", desktop.unload_model),
                         enabled=lambda item: desktop.app.loaded is not None),
        pystray.MenuItem("Get models…", _safe("get models", desktop.get_models)),
    ]


def chat_items(desktop: "TrayActions") -> list[pystray.MenuItem]:
    from rmm_tray.chat.history import recent_chats, title_from

    chats = recent_chats(desktop.app.history, 10)
    if not chats:
        return [pystray.MenuItem("No chats yet", None, enabled=False)]
    # One line each, whatever a title holds: a menu entry cannot wrap.
    return [pystray.MenuItem(title_from(c.title or c.id, 40),
                             _safe("chat", lambda i=c.id: desktop.open_chat(i)))
            for c in chats]


def prompt_items(desktop: "TrayActions") -> list[pystray.MenuItem]:
    templates = sorted(desktop.app.templates().values(), key=lambda t: t.name)
    return [pystray.MenuItem(t.name, _safe("prompt", lambda t=t: desktop.use_prompt(t)))
            for t in templates] or [pystray.MenuItem("No prompts", None, enabled=False)]


def plugin_items(desktop: "TrayActions") -> list[pystray.MenuItem]:
    out = []
    for plugin, result in desktop.app.plugins.call_each("tray_menu_items", app=desktop.app):
        for entry in result or []:
            action = entry.action
            out.append(pystray.MenuItem(
                entry.text, _safe(f"{plugin}:{entry.text}", lambda a=action: desktop.run_plugin(a)),
                enabled=entry.enabled))
    return out


def api_items(desktop: "TrayActions") -> list[pystray.MenuItem]:
    api = desktop.local_api
    items = [
        pystray.MenuItem(api.label(), _safe("api on", lambda: desktop.set_local_api(True)),
                         checked=lambda item: api.running, radio=True),
        pystray.MenuItem("Off", _safe("api off", lambda: desktop.set_local_api(False)),
                         checked=lambda item: not api.running, radio=True),
    ]
    if api.error and not api.running:
        items.append(pystray.MenuItem(api.error[:80], None, enabled=False))
    return items


def menu_items(desktop: "TrayActions") -> list[Any]:
    items: list[Any] = [
        # The hotkey that listens now, or none: an "Open chat (Ctrl+Alt+Space)" that
        # does nothing on that key would teach the person the app is broken.
        pystray.MenuItem(f"Open chat ({desktop.hotkey_label})" if desktop.hotkey_label else "Open chat",
                         _safe("open", desktop.toggle_popup), default=True),
        pystray.MenuItem("Model", pystray.Menu(lambda: model_items(desktop))),
        pystray.MenuItem("Recent chats", pystray.Menu(lambda: chat_items(desktop))),
        pystray.MenuItem("Prompts", pystray.Menu(lambda: prompt_items(desktop))),
        pystray.MenuItem("Local API", pystray.Menu(lambda: api_items(desktop))),
    ]
    extra = plugin_items(desktop)
    if extra:
        items += [pystray.Menu.SEPARATOR, *extra]
    items += [
        pystray.Menu.SEPARATOR,
        pystray.MenuItem("Settings…", _safe("settings", desktop.open_settings)),
        pystray.MenuItem("Open data folder", _safe("folder", desktop.open_data_folder)),
        pystray.Menu.SEPARATOR,
        pystray.MenuItem("Quit", _safe("quit", desktop.quit)),
    ]
    return items


class Tray:
    def __init__(self, desktop: "TrayActions") -> None:
        self.desktop = desktop
        self.icon = pystray.Icon(
            "rmm-tray", icons.icon("idle"), "RunMyModel",
            menu=pystray.Menu(lambda: menu_items(desktop)),
        )
        self.state = "idle"
        if not self.icon.HAS_MENU:
            log.warning("this tray backend has no menu; clicking the icon opens the chat")

    def show_state(self, state: str, tooltip: str, *, refresh_menu: bool = True) -> None:
        """``refresh_menu=False`` for the frequent tooltip-only changes (download
        progress): rebuilding a native menu several times a second is wasteful."""
        if state != self.state:
            self.state = state
            self.icon.icon = icons.icon(state)
        if tooltip != self.icon.title:
            self.icon.title = tooltip
        if refresh_menu:
            self.refresh()

    def refresh(self) -> None:
        try:
            self.icon.update_menu()
        except Exception:
            log.debug("menu update skipped", exc_info=True)

    def notify(self, message: str) -> None:
        try:
            self.icon.notify(message, "RunMyModel")
        except Exception:  # not every backend or desktop shows notifications
            log.debug("notification skipped", exc_info=True)

    def run(self, setup: Callable[[], None]) -> None:
        def started(icon: pystray.Icon) -> None:
            icon.visible = True
            setup()

        _let_python_handle_signals()
        self.icon.run(setup=started)

    def stop(self) -> None:
        self.icon.stop()


def _let_python_handle_signals() -> None:
    """Python runs signal handlers only between bytecodes; GTK's main loop would
    sit in C and never let SIGTERM through. A periodic no-op callback does."""
    try:
        from gi.repository import GLib
    except ImportError:
        return
    GLib.timeout_add(250, lambda: True)
