"""The tray app: the core process. Owns the IPC endpoint, the engine (through
App and the chat controller), the hotkey, the tray icon and the popup process."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from rmm_tray.app import App
from rmm_tray.chat.templates import PromptTemplate
from rmm_tray.desktop import hotkey_check, ipc, opener
from rmm_tray.desktop.api_controller import LocalApi
from rmm_tray.desktop.chat_controller import ChatController
from rmm_tray.desktop.history_controller import HistoryController
from rmm_tray.desktop.models_controller import ModelsController, downloads_summary
from rmm_tray.desktop.page_api import (
    CHAT,
    DESKTOP,
    HISTORY,
    MODELS,
    PAGE_API,
    PROMPTS,
    SETTINGS,
    WELCOME,
    checked_call,
)
from rmm_tray.desktop.prompts_controller import PromptsController
from rmm_tray.desktop.settings_controller import SettingsController
from rmm_tray.desktop.welcome import WelcomeController
from rmm_tray.desktop.work import Background
from rmm_tray.errors import RmmError, report
from rmm_tray.shell import hotkey, webkit_tuning
from rmm_tray.shell.popup_host import PopupHost

log = logging.getLogger(__name__)

class DesktopApp:
    def __init__(self, app: App, *, use_hotkey: bool = True, use_tray: bool = True) -> None:
        webkit_tuning.apply_env()  # before the tray starts GTK (inherited by the popup)
        self.app = app
        self.use_hotkey = use_hotkey
        self.use_tray = use_tray
        ui = app.config["ui"]
        self.hotkey_combo = str(ui["hotkey"])
        self._hotkey_problem: str | None = None if use_hotkey else "off: started with --no-hotkey"
        self._hotkey_lock = threading.Lock()
        self._hotkey_told = False  # the notification that the hotkey is off, once per run
        self.popup = PopupHost(app.home.root)
        self.work = Background()
        self.controller = ChatController(app, emit=self.popup.page, on_state=self._state_changed,
                                         work=self.work)
        self.models = ModelsController(app, emit=self.popup.page, chat=self.controller,
                                       on_downloads=self._downloads_changed, work=self.work)
        self.settings = SettingsController(app, emit=self.popup.page, shell=self, work=self.work)
        self.history = HistoryController(app, emit=self.popup.page, chat=self.controller, work=self.work)
        self.welcome = WelcomeController(app, emit=self.popup.page, work=self.work)
        self.prompts = PromptsController(app, emit=self.popup.page, chat=self.controller,
                                         work=self.work, on_change=self._prompts_changed)
        self.prompt_listener: Any = None
        self.local_api = LocalApi(app, on_change=self._api_changed, on_error=self.notify)
        #: combo -> prompt name, as bound now (status shows it), and by what.
        self.prompt_hotkeys: dict[str, str] = {}
        #: Until when (monotonic) the global hotkeys ignore their keys: a recorder in
        #: the page has them. X11's listener hears keys without taking them, so
        #: recording the current hotkey would otherwise also hide the popup.
        self._keys_held_until = 0.0
        self.prompt_hotkeys_via = ""
        #: Wayland: the GlobalShortcuts session holding the main and the prompts'
        #: hotkeys, and the prompt bindings it was asked for.
        self._portal: Any = None
        self._portal_wanted: dict[str, str] | None = None
        self._download_line: str | None = None
        self._view_on_ready: str | None = None
        self.popup.on_attach = self._popup_attached
        self.tray: Any = None
        self.listener: Any = None
        self.server: ipc.Server | None = None
        self._quit = threading.Event()
        self._notified: str | None = None
        self.last_notice: str | None = None
        self._probes: dict[int, Future[Any]] = {}
        self._probe_ids = itertools.count(1)

    # -- life cycle --------------------------------------------------------------

    def run(self) -> int:
        from rmm_tray.home import logs

        logs.set_role("core")
        try:
            self.server = ipc.Server(self.app.home.root, self.handle).start()
        except ipc.StuckInstance:
            raise  # its one line says so; asking it to show would only wait again
        except ipc.AlreadyRunning:
            ipc.request(self.app.home.root, {"cmd": "show"})
            print("RunMyModel is already running; its chat window is open.", file=sys.stderr)
            return 0
        self.app.start()  # plugins' startup hooks run in the background, never in the way
        if not self.use_tray:
            self.popup.start()
        else:
            # The popup (Python, GTK and two WebKit processes, a page to load: CPU-heavy
            # for half a second) starts once the tray's icon is up (_tray_started): on
            # two cores it held the tray host back from drawing the icon. A tray that
            # never gets going still gets its popup.
            fallback = threading.Timer(3.0, self.popup.start)
            fallback.daemon = True
            fallback.start()
        self.models.start()  # resumes what a previous run left, in the background
        self.controller.refresh_engines()  # remote servers' models, for the menu and the picker
        if self.app.config["server"]["enabled"]:
            self.work.run("local API", self.local_api.set, True)
        if self.use_hotkey and hotkey.is_wayland():  # the portal may wait for the person
            self.work.run("hotkey", self._first_hotkey)
        elif self.use_hotkey:
            self.rebind_hotkey(self.hotkey_combo)
            self.bind_prompt_hotkeys()
        threading.Thread(target=self._watch_for_menu_changes, name="rmm-menu-watch",
                         daemon=True).start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.quit())
        try:
            if self.use_tray:
                self._run_tray()
            while not self._quit.wait(0.5):
                pass
        finally:
            self._shutdown()
        return 0

    def _run_tray(self) -> None:
        """Blocks in the tray's loop on the main thread. Without a tray the app
        still runs: the hotkey and `rmm-tray toggle` open the chat."""
        try:
            from rmm_tray.shell.tray import Tray

            self.tray = Tray(self)
            self.tray.run(setup=self._tray_started)
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self._quit.is_set():  # pystray's own clean-up can fail on the way out
                log.debug("tray shutdown: %s", reason)
                return
            log.error("no tray icon (%s); the hotkey and 'rmm-tray toggle' still open the chat",
                      reason)
            self.tray = None
            self.popup.start()

    def _shutdown(self) -> None:
        self.local_api.close()
        if self.listener is not None:
            self.listener.stop()
        if self.prompt_listener is not None:
            self.prompt_listener.stop()
        if self._portal is not None:
            self._portal.stop()
        self.popup.stop()
        if self.server is not None:
            self.server.close()
        self.work.close()
        self.prompts.close()
        self.app.close()

    def quit(self) -> None:
        self._quit.set()
        if self.tray is not None:
            self.tray.stop()

    # -- IPC -----------------------------------------------------------------------

    def handle(self, message: dict[str, Any], conn: Any) -> Any:
        cmd = message.get("cmd")
        if cmd == "ping":
            return {"ok": True}
        if cmd in ("show", "hide", "toggle"):
            self.popup.command(cmd)
            return {"ok": True}
        if cmd == "popup-hello":
            self._keys_held_until = 0.0  # a popup that died recording holds nothing
            self.popup.attach(conn)
            return None
        if cmd == "js":
            self._js(message)
            return None
        if cmd == "status":
            return self.status()
        if cmd == "probe":
            return {"ok": True, "result": self._probe(str(message.get("what")))}
        if cmd == "probe-result":
            future = self._probes.pop(message.get("id"), None)
            if future is not None:
                future.set_result(message.get("result"))
            return None
        if cmd == "prompt":
            return self._prompt_command(message)
        if cmd == "export-to":
            # From the popup process's own save dialog (the page cannot send this).
            path, chat_id, fmt = message.get("path"), message.get("chat_id"), message.get("fmt")
            if isinstance(path, str) and isinstance(chat_id, str) and isinstance(fmt, str):
                self.history.export_to(chat_id, fmt, Path(path))
            return None
        if cmd == "tray":
            return self._tray_action(message)
        if cmd == "quit":
            self.work.run("quit", self.quit)
            return {"ok": True}
        return {"error": f"unknown command {cmd!r}"}

    def status(self) -> dict[str, Any]:
        loaded = self.app.loaded
        return {"ok": True, "pid": os.getpid(), "popup_pid": self.popup.pid,
                "popup_starts": self.popup.starts, "popup_connected": self.popup.connected,
                "state": self.controller.status(), "error": self.controller.last_error,
                "model": loaded.name if loaded else None,
                "n_ctx": loaded.n_ctx if loaded else None,
                "loads": self.app.engine.loads if self.app.engine_started else 0,
                "hotkey": self.listener is not None, "tray": self.tray is not None,
                "hotkey_problem": self._hotkey_problem, "notice": self.last_notice,
                "prompt_hotkeys": self.prompt_hotkeys, "prompt_hotkeys_via": self.prompt_hotkeys_via,
                "api": self.local_api.address,
                "tooltip": self.tooltip()}

    def _probe(self, what: str) -> Any:
        """Ask the popup page a fixed question (see popup_process.PROBES)."""
        pid = next(self._probe_ids)
        future: Future[Any] = Future()
        self._probes[pid] = future
        if not self.popup.send({"event": "probe", "id": pid, "what": what}):
            self._probes.pop(pid, None)
            raise RmmError("the popup is not connected")
        return future.result(timeout=10)

    def _js(self, message: dict[str, Any]) -> None:
        """A call from the page (see desktop.page_api): checked, converted and
        handed to its target. One way: nobody waits for a reply."""
        method = message.get("method")
        entry = PAGE_API.get(method) if isinstance(method, str) else None
        emit = self.models.emit if entry is not None and entry.target == MODELS else self.controller.emit
        error = "models.error" if emit is self.models.emit else "error"
        if entry is not None and entry.target == SETTINGS:
            emit, error = self.settings.emit, "settings.error"
        if entry is not None and entry.target == PROMPTS:
            emit, error = self.prompts.emit, "prompts.error"
        if entry is not None and entry.target == HISTORY:
            emit, error = self.history.emit, "history.error"
        try:
            entry, args = checked_call(method, message.get("args", []))
            owner = {CHAT: "controller", MODELS: "models", SETTINGS: "settings",
                     PROMPTS: "prompts", WELCOME: "welcome", HISTORY: "history",
                     DESKTOP: None}[entry.target]
            target = getattr(self, owner) if owner else self
            getattr(target, entry.method)(*args)
        except Exception as exc:  # js_api is an edge: the page shows it, the app goes on
            emit({"type": error, "message": report(log, f"popup call {method}", exc)})

    def page_ready(self) -> None:
        self.popup.send({"event": "config",
                         "hide_on_blur": bool(self.app.config["ui"]["hide_on_blur"])})
        ui = self.app.config["ui"]
        self.popup.page({"type": "settings.applied", "theme": ui["theme"], "open_on": ui["open_on"]})
        welcome = self.welcome.event(self.hotkey_label)
        if welcome is not None:
            self.popup.page(welcome)
        self.controller.push_state()
        self.models.downloads()  # a restarted popup shows the queue again
        if self._view_on_ready:
            self.models.emit({"type": "view", "name": self._view_on_ready})
            self._view_on_ready = None

    def _tray_action(self, message: dict[str, Any]) -> dict[str, Any]:
        """Tests and scripts: run a tray menu entry's own callback by its label path."""
        from rmm_tray.shell.tray import menu_items

        path = list(message.get("path") or [])
        items = menu_items(self)
        item: Any = None
        for label in path:
            item = next((i for i in items if getattr(i, "text", None) == label), None)
            if item is None:
                return {"error": f"no menu entry {label!r}"}
            items = list(item.submenu.items) if item.submenu else []
        if item is None:
            return {"error": "empty path"}
        if message.get("click"):
            item(self.tray.icon if self.tray else None)
        return {"ok": True, "checked": item.checked,
                "entries": [getattr(i, "text", "") for i in items]}

    # -- what the tray and popup ask for -----------------------------------------------

    def _popup_attached(self) -> None:
        log.info("popup process %s connected", self.popup.pid)

    def tooltip(self) -> str:
        """The tray's tooltip: the download in progress while one runs, else the engine."""
        if self._download_line:
            return f"RunMyModel · {self._download_line}"
        status = self.app.engine_status()
        model = self.app.model_name(status.model) if status.model else "no model"
        if self.controller.status() == "error":
            return f"RunMyModel · {model} · error: {self.controller.last_error}"
        return f"RunMyModel · {model} · {status.state}"

    def _state_changed(self, *, refresh_menu: bool = True) -> None:
        if self.tray is None:
            return
        error = self.controller.last_error
        # The popup's rule, so the icon, the popup and `status` agree: red while idle
        # after a failure, until the next action succeeds or starts.
        state = self.controller.status()
        self.tray.show_state(state, self.tooltip(), refresh_menu=refresh_menu)
        if error and error != self._notified:
            self.tray.notify(error)
        self._notified = error

    def _downloads_changed(self, items: list[dict[str, Any]], finished: list[dict[str, Any]]) -> None:
        """On the models controller's publishing thread, a few times a second at most."""
        line = downloads_summary(items)
        changed = line != self._download_line
        self._download_line = line
        if changed:
            self._state_changed(refresh_menu=bool(finished))
        if self.tray is not None:
            for d in finished:
                if d["state"] == "done":
                    self.tray.notify(f"Downloaded {d['name']}")
                elif d["state"] == "failed":
                    self.tray.notify(f"Download failed: {d['error']}")

    def _watch_for_menu_changes(self) -> None:
        """Models and chats come and go outside the app too (a download, a file
        manager, the CLI): rebuild the menu when what it lists has changed."""
        seen: tuple[Any, ...] = ()
        while not self._quit.wait(3.0):
            try:
                now = (tuple(self.controller.models()), self.app.home.chats.stat().st_mtime)
                if now != seen and self.tray is not None:
                    self.tray.refresh()
                if seen and now[0] != seen[0]:
                    self.controller.refresh_state()  # the popup's model picker follows too
                seen = now
            except Exception:  # a worker thread is an edge
                log.debug("menu refresh failed", exc_info=True)

    def current_model_name(self) -> str | None:
        model = self.controller.current_model()
        return self.app.model_name(model) if model is not None else None

    def model_names(self) -> list[str]:
        return self.controller.models()

    def toggle_popup(self) -> None:
        self.popup.command("toggle")

    def choose_model(self, name: str) -> None:
        self.controller.set_model(name)

    def unload_model(self) -> None:
        self.work.run("unload", self.controller.unload)

    def get_models(self) -> None:
        # The view first: the popup's show focuses whatever view the page is on. A
        # popup still starting gets it once its page says it is ready.
        if not self.popup.send({"event": "page", "data": {"type": "view", "name": "models"}}):
            self._view_on_ready = "models"
        self.popup.command("show")

    def open_chat(self, chat_id: str) -> None:
        self.controller.open_chat(chat_id)
        self.popup.command("show")

    def _prompt_command(self, message: dict[str, Any]) -> dict[str, Any]:
        """`rmm-tray prompt run NAME` (the command a Wayland desktop binds): as the
        prompt's own hotkey."""
        name = message.get("name")
        if not isinstance(name, str):
            return {"error": "prompt: no name"}
        try:
            template = self.app.template(name)
        except RmmError as exc:
            return {"error": str(exc)}
        self.use_prompt(template, run_now=template.run_immediately)
        return {"ok": True}

    def bind_prompt_hotkeys(self) -> None:
        """Listen for each prompt's own hotkey (clashes are refused when a prompt is
        saved, and skipped with a warning here); again whenever prompts change."""
        from rmm_tray.desktop import prompt_hotkeys

        if not self.use_hotkey:
            return
        wanted = prompt_hotkeys.bindings(self.app)
        if hotkey.is_wayland():  # one portal session holds them with the main hotkey
            with self._hotkey_lock:
                if wanted != self._portal_wanted:
                    main_ok = hotkey_check.problem(self.hotkey_combo) is None
                    why = self._bind_portal(self.hotkey_combo if main_ok else None, wanted)
                    if main_ok:
                        self._hotkey_problem = why
            return
        if wanted == self.prompt_hotkeys and (self.prompt_listener is not None or not wanted):
            return
        if self.prompt_listener is not None:
            self.prompt_listener.stop()
            self.prompt_listener = None
        if wanted and not hotkey.is_wayland():
            self.prompt_listener = hotkey.start_many(
                {combo: self._unless_held(lambda n=name: self._prompt_hotkey(n))
                 for combo, name in wanted.items()})
        self.prompt_hotkeys = wanted
        self.prompt_hotkeys_via = "keyboard listener" if self.prompt_listener is not None else ""

    def _bind_portal(self, main: str | None, prompts: dict[str, str]) -> str | None:
        """Wayland: the main hotkey (None: none) and ``prompts`` (combo -> name)
        in one new GlobalShortcuts session, the previous one closed (the spec
        binds a session's shortcuts once). Why the main hotkey is off, or None.
        Called with _hotkey_lock held."""
        from rmm_tray.shell import portal

        if self._portal is not None:
            self._portal.stop()
        self._portal, self.listener, self.prompt_hotkeys = None, None, {}
        self._portal_wanted = dict(prompts)
        self.prompt_hotkeys_via = ""
        templates = self.app.templates() if prompts else {}
        about = {n: templates[n].description for n in prompts.values() if n in templates}
        shortcuts = portal.shortcuts_for(main, prompts, about)
        if not shortcuts:
            return None
        try:
            self._portal = portal.start(shortcuts, self._portal_activated)
        except portal.PortalUnavailable as exc:
            if prompts:
                log.warning("prompt hotkeys off (%s): bind 'rmm-tray prompt run NAME' as a desktop "
                            "shortcut", exc)
            return f"{exc}; on Wayland, bind 'rmm-tray toggle' as a desktop shortcut" if main else None
        bound = self._portal.bound
        self.prompt_hotkeys = {c: n for c, n in prompts.items() if portal.PROMPT_PREFIX + n in bound}
        self.prompt_hotkeys_via = "GlobalShortcuts portal" if self.prompt_hotkeys else ""
        if main is None:
            return None
        if portal.SHORTCUT_ID not in bound:
            return "the desktop did not bind it; on Wayland, bind 'rmm-tray toggle' as a desktop shortcut"
        self.listener = self._portal
        log.info("hotkey bound through the GlobalShortcuts portal: %s", self._portal.trigger)
        return None

    # How long the hotkeys stay held after a recorder lets go: the page hears the
    # recorded keys later than the listener does (X, WebKit, two IPC hops).
    HOLD_GRACE_S = 0.2

    def hold_hotkeys(self, on: str) -> None:
        """The page's hotkey recorder took the keys (on) or let them go."""
        held = str(on).strip().lower() in ("1", "true", "on")
        self._keys_held_until = float("inf") if held else time.monotonic() + self.HOLD_GRACE_S

    def _keys_held(self) -> bool:
        if time.monotonic() < self._keys_held_until:
            log.debug("hotkey ignored: a recorder in the popup has the keys")
            return True
        return False

    def _unless_held(self, action: Callable[[], None]) -> Callable[[], None]:
        def fire() -> None:
            if not self._keys_held():
                action()
        return fire

    def _portal_activated(self, shortcut_id: str) -> None:
        from rmm_tray.shell import portal

        if self._keys_held():
            return
        if shortcut_id == portal.SHORTCUT_ID:
            self.popup.command("toggle")
        elif shortcut_id.startswith(portal.PROMPT_PREFIX):
            self._prompt_hotkey(shortcut_id[len(portal.PROMPT_PREFIX):])

    def _prompt_hotkey(self, name: str) -> None:
        template = self.app.template(name)
        self.use_prompt(template, run_now=template.run_immediately)

    def _prompts_changed(self) -> None:
        self.work.run("bind prompt hotkeys", self.bind_prompt_hotkeys, on_error=self.notify)
        if self.tray is not None:
            self.tray.refresh()

    def use_prompt(self, template: PromptTemplate, *, run_now: bool = False) -> None:
        """The tray's Prompts ▸ NAME (and a prompt's hotkey): the selection and the
        clipboard are read first, while the other app still has them, then the
        popup opens on the prompt's form in the Chat view."""
        self.work.run("use prompt", self._use_prompt, template, run_now, on_error=self.notify)

    def _use_prompt(self, template: PromptTemplate, run_now: bool) -> None:
        from rmm_tray.desktop.selection import capture

        captured = capture()
        if captured.from_clipboard and captured.notice:  # told once: a run at once shows no form
            self.notify(captured.notice)
        if not self.popup.send({"event": "page", "data": {"type": "view", "name": "chat"}}):
            self._view_on_ready = "chat"
        self.prompts.show_form(template, captured, run_now=run_now)
        self.popup.command("show")

    def run_plugin(self, action: Any) -> None:
        self.work.run("plugin menu action", action, self.app,
                      on_error=lambda line: self.tray.notify(line) if self.tray else None)

    def open_settings(self) -> None:
        self.show_view("settings")

    def show_view(self, name: str) -> None:
        # As get_models: the view first, then the show, or once a starting popup is ready.
        if not self.popup.send({"event": "page", "data": {"type": "view", "name": name}}):
            self._view_on_ready = name
        self.popup.command("show")

    def open_data_folder(self) -> None:
        """On a worker: an opener may take seconds to say it failed; its failure
        is a notification (and a line in the log), never a traceback."""
        self.work.run("open data folder", opener.open_path, self.app.home.root, on_error=self.notify)

    def set_local_api(self, on: bool) -> None:
        """The tray's Local API ▸ On/Off: on a worker (the server's libraries load
        on the first start); a port in use is a notification."""
        self.work.run("local API", self.local_api.set, on)

    def _api_changed(self) -> None:
        if self.tray is not None:
            self.tray.refresh()

    def notify(self, message: str) -> None:
        """A notice for the person: the tray's notification where there is a tray;
        always a line in the log, so it is never lost."""
        self.last_notice = message
        log.warning("%s", message)
        if self.tray is not None:
            self.tray.notify(message)

    # -- the hotkey ----------------------------------------------------------

    @property
    def hotkey_label(self) -> str:
        """What the tray shows: the hotkey that is listening now, or empty."""
        return hotkey_check.label(self.hotkey_combo) if self.listener is not None else ""

    def hotkey_status(self) -> str | None:
        return self._hotkey_problem

    def rebind_hotkey(self, combo: str) -> str | None:
        """Listen for ``combo`` from now on (the old one stops); None when it
        listens, else why not, which Settings and the tray's notice show."""
        with self._hotkey_lock:
            why = hotkey_check.problem(combo)
            if self.listener is not None and not hotkey.is_wayland():
                self.listener.stop()
                self.listener = None
            if hotkey.is_wayland():
                # The desktop's GlobalShortcuts portal where it has one (it may ask the
                # person to confirm), with the prompts' hotkeys; else the documented
                # `rmm-tray toggle` binding.
                from rmm_tray.desktop import prompt_hotkeys

                prompts = prompt_hotkeys.bindings(self.app) if self.use_hotkey else {}
                why = self._bind_portal(combo if why is None else None, prompts) or why
            elif why is None:
                self.listener = hotkey.start(combo, self._unless_held(lambda: self.popup.command("toggle")))
                if self.listener is None:
                    why = f"Hotkey {combo!r} was refused by the keyboard listener (see the log)"
            self.hotkey_combo = combo
            self._hotkey_problem = why
        if why is not None:
            log.warning("hotkey off: %s", why)
        if self.tray is not None:
            self.tray.refresh()
        return why

    def popup_config(self) -> None:
        self.popup.send({"event": "config",
                         "hide_on_blur": bool(self.app.config["ui"]["hide_on_blur"])})

    #: From the tray's loop beginning to its host drawing the icon (~0.15 s for a
    #: bare pystray icon here), the popup waits.
    POPUP_AFTER_TRAY_S = 0.25

    def _tray_started(self) -> None:
        timer = threading.Timer(self.POPUP_AFTER_TRAY_S, self.popup.start)
        timer.daemon = True
        timer.start()
        self._state_changed()
        if self.welcome.first_run and self.tray is not None:
            where = f"press {self.hotkey_label}" if self.hotkey_label else "click the icon"
            self.tray.notify(f"RunMyModel is in the tray — {where} to chat")
        self._tell_hotkey_problem()

    def _first_hotkey(self) -> None:
        """Wayland: the portal answers in its own time; its verdict is told once
        the tray is up (or by _tray_started, whichever comes second)."""
        self.rebind_hotkey(self.hotkey_combo)
        self._tell_hotkey_problem()

    def _tell_hotkey_problem(self) -> None:
        """Once per run, as a notification: the hotkey the person expects is off."""
        with self._hotkey_lock:
            problem, told = self._hotkey_problem, self._hotkey_told
            if problem is None or not self.use_hotkey or self.tray is None or told:
                return
            self._hotkey_told = True
        self.tray.notify(f"The hotkey is off: {problem}")
