"""The global hotkeys on Wayland: the XDG desktop portal's GlobalShortcuts
interface (org.freedesktop.portal.GlobalShortcuts, version 1), over the session
bus with GIO. One session holds every shortcut of the app: the main hotkey
(id ``toggle``) and each prompt's (``prompt:NAME``), so the desktop's shortcut
settings list them together, each with a description the person reads there.
Where no portal offers it, the caller falls back to the `rmm-tray toggle` (and
`rmm-tray prompt run NAME`) desktop shortcuts.

The portal's flow: CreateSession and BindShortcuts each return a Request object
whose Response signal carries the result; the desktop may ask the person to
confirm or change the keys; afterwards Activated(session, shortcut_id, ...) fires
on each press. The specification lets an application bind a session's
shortcuts only once: a changed set is a new session (the old one is closed).
GIO delivers signals to the main context that was the thread's default when
they were subscribed: this module runs its own loop in a thread of its own, so
it works with or without the tray's GTK loop.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.portal.Desktop"
OBJECT_PATH = "/org/freedesktop/portal/desktop"
INTERFACE = "org.freedesktop.portal.GlobalShortcuts"
REQUEST = "org.freedesktop.portal.Request"
#: The main hotkey's shortcut id; a prompt's is PROMPT_PREFIX + its name.
SHORTCUT_ID = "toggle"
PROMPT_PREFIX = "prompt:"
TOGGLE_DESCRIPTION = "Show or hide the RunMyModel chat"
TIMEOUT_S = 30.0


class PortalUnavailable(Exception):
    """No GlobalShortcuts portal here, or it refused; the message says which."""


def trigger_for(combo: str) -> str:
    """pynput's '<ctrl>+<alt>+<space>' as the XDG shortcuts spec writes a
    preferred trigger: 'CTRL+ALT+space'."""
    mods = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "cmd": "LOGO", "alt_gr": "ALT"}
    out = []
    for part in combo.split("+"):
        name = part.strip("<>") if len(part) > 1 else part
        base = name.split("_")[0] if name not in ("alt_gr", "page_up", "page_down") else name
        out.append(mods.get(base, name))
    return "+".join(out)


def available(timeout_ms: int = 2000) -> int | None:
    """The portal's GlobalShortcuts version, or None when the session has none."""
    try:
        from gi.repository import Gio, GLib
    except ImportError:
        return None
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync(BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "Get",
                              GLib.Variant("(ss)", (INTERFACE, "version")), GLib.VariantType("(v)"),
                              Gio.DBusCallFlags.NONE, timeout_ms, None)
    except GLib.Error:
        return None
    return int(reply.unpack()[0])


@dataclass(frozen=True)
class Shortcut:
    """One shortcut as the portal is asked for it."""

    id: str
    combo: str  # pynput's spelling, as config.toml and the prompts write it
    description: str  # what the desktop's shortcut settings show the person


def prompt_shortcut(name: str, combo: str, about: str = "") -> Shortcut:
    """A prompt's shortcut; ``about`` is the prompt's own description."""
    return Shortcut(PROMPT_PREFIX + name, combo,
                    f"Run the RunMyModel prompt '{name}'" + (f" — {about}" if about else ""))


class PortalShortcuts:
    """A session with its shortcuts bound; ``stop()`` closes it (the desktop
    forgets them). ``on_activated`` gets the shortcut id of each press."""

    def __init__(self, shortcuts: Sequence[Shortcut], on_activated: Callable[[str], None]) -> None:
        self.shortcuts = list(shortcuts)
        self.on_activated = on_activated
        #: id -> what the desktop says the keys are (it may have let the person
        #: change them, or bound only some).
        self.bound: dict[str, str] = {}
        self._ready = threading.Event()
        self._error: str | None = None
        self._loop: Any = None
        self._bus: Any = None
        self._session: str | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="rmm-portal", daemon=True)

    @property
    def trigger(self) -> str:
        """The main hotkey's keys as the desktop describes them ("" when unbound)."""
        return self.bound.get(SHORTCUT_ID, "")

    def start(self, timeout: float = TIMEOUT_S) -> "PortalShortcuts":
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise PortalUnavailable("the GlobalShortcuts portal did not answer in time")
        if self._error is not None:
            self.stop()
            raise PortalUnavailable(self._error)
        return self

    # -- the portal's thread ---------------------------------------------------------

    def _run(self) -> None:
        from gi.repository import Gio, GLib

        context = GLib.MainContext.new()
        context.push_thread_default()
        self._loop = GLib.MainLoop(context)
        try:
            self._bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
            self._bus.signal_subscribe(BUS_NAME, INTERFACE, "Activated", OBJECT_PATH, None,
                                       Gio.DBusSignalFlags.NONE, self._activated)
            self._create_session()
        except GLib.Error as exc:
            self._fail(f"the GlobalShortcuts portal refused: {exc.message}")
        except Exception as exc:  # the portal's thread is an edge
            log.exception("the GlobalShortcuts portal failed")
            self._fail(f"the GlobalShortcuts portal failed: {exc}")
        if not self._ready.is_set() or self._error is None:
            self._loop.run()
        context.pop_thread_default()

    def _fail(self, message: str) -> None:
        self._error = message
        self._ready.set()

    def _request(self, method: str, args: Any, on_response: Callable[[dict[str, Any]], None]) -> None:
        """Call a portal method that answers through a Request object: subscribe
        to the Request's path before calling, so the Response cannot be missed."""
        from gi.repository import Gio, GLib

        token = "rmm" + secrets.token_hex(6)
        sender = self._bus.get_unique_name().lstrip(":").replace(".", "_")
        path = f"{OBJECT_PATH}/request/{sender}/{token}"
        sub: list[int] = []

        def response(_conn: Any, _sender: str, _path: str, _iface: str, _signal: str, params: Any) -> None:
            self._bus.signal_unsubscribe(sub[0])
            code, results = params.unpack()
            if code != 0:
                self._fail(f"the desktop did not allow the shortcuts ({method}: "
                           f"{'cancelled' if code == 1 else 'failed'})")
                return
            try:
                on_response(results)
            except Exception as exc:  # a signal handler is an edge
                log.exception("the GlobalShortcuts portal's answer was not understood")
                self._fail(f"the GlobalShortcuts portal's answer was not understood: {exc}")

        sub.append(self._bus.signal_subscribe(BUS_NAME, REQUEST, "Response", path, None,
                                              Gio.DBusSignalFlags.NONE, response))
        *head, options = args
        options = {**options, "handle_token": GLib.Variant("s", token)}
        signature = {"CreateSession": "(a{sv})", "BindShortcuts": "(oa(sa{sv})sa{sv})"}[method]
        self._bus.call_sync(BUS_NAME, OBJECT_PATH, INTERFACE, method,
                            GLib.Variant(signature, (*head, options)), GLib.VariantType("(o)"),
                            Gio.DBusCallFlags.NONE, int(TIMEOUT_S * 1000), None)

    def _create_session(self) -> None:
        from gi.repository import GLib

        token = "rmm" + secrets.token_hex(6)
        self._request("CreateSession", ({"session_handle_token": GLib.Variant("s", token)},),
                      self._session_created)

    def _session_created(self, results: dict[str, Any]) -> None:
        from gi.repository import GLib

        self._session = str(results["session_handle"])
        if self._stopped:  # stop() came while the portal was answering
            self._close_session()
            return
        wanted = [(s.id, {"description": GLib.Variant("s", s.description),
                          "preferred_trigger": GLib.Variant("s", trigger_for(s.combo))})
                  for s in self.shortcuts]
        self._request("BindShortcuts", (self._session, wanted, "", {}), self._bound)

    def _bound(self, results: dict[str, Any]) -> None:
        shortcuts = dict(results.get("shortcuts", []))
        if not shortcuts:
            self._fail("the desktop bound no shortcut")
            return
        self.bound = {sid: str(props.get("trigger_description", "")) for sid, props in shortcuts.items()}
        self._ready.set()

    def _activated(self, _conn: Any, _sender: str, _path: str, _iface: str, _signal: str,
                   params: Any) -> None:
        session, shortcut_id = params.unpack()[:2]
        if session != self._session or shortcut_id not in self.bound:
            return
        try:
            self.on_activated(shortcut_id)
        except Exception:  # a signal handler is an edge
            log.exception("the shortcut's action failed (%s)", shortcut_id)

    def _close_session(self) -> None:
        from gi.repository import Gio, GLib

        if self._bus is None or not self._session:
            return
        session, self._session = self._session, None
        try:
            self._bus.call_sync(BUS_NAME, session, "org.freedesktop.portal.Session", "Close",
                                None, None, Gio.DBusCallFlags.NONE, 2000, None)
        except GLib.Error:
            pass

    def stop(self) -> None:
        """Close the session; safe to call more than once."""
        self._stopped = True
        self._close_session()
        if self._loop is not None:
            self._loop.quit()


def start(shortcuts: Sequence[Shortcut], on_activated: Callable[[str], None]) -> PortalShortcuts:
    """Bind ``shortcuts`` in one new session; PortalUnavailable saying why when
    it cannot."""
    if available() is None:
        raise PortalUnavailable("this desktop offers no GlobalShortcuts portal")
    return PortalShortcuts(shortcuts, on_activated).start()


def shortcuts_for(main: str | None, prompts: dict[str, str],
                  about: dict[str, str] | None = None) -> list[Shortcut]:
    """The session's shortcuts: the main hotkey (unless None) and each prompt's
    (``prompts``: combo -> prompt name; ``about``: name -> its description)."""
    out = [Shortcut(SHORTCUT_ID, main, TOGGLE_DESCRIPTION)] if main else []
    return out + [prompt_shortcut(name, combo, (about or {}).get(name, ""))
                  for combo, name in sorted(prompts.items(), key=lambda i: i[1])]
