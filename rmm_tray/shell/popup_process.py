"""The popup window's own process: a pywebview window, created hidden and never
destroyed, and a link to the core over the app's IPC endpoint. It is a view: every
action goes to the core, and the core's events come back to the page.

Run as ``python -m rmm_tray.shell.popup_process HOME``; the core starts it.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import threading
from collections.abc import Callable
from importlib.resources import files
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import webview

from rmm_tray.desktop import ipc
from rmm_tray.desktop.page_api import PAGE_API, POPUP_LOCAL
from rmm_tray.shell import popup_geometry, webkit_tuning

log = logging.getLogger("rmm_tray.popup")

# Read-only looks at the page, for `rmm-tray`'s own tests and diagnostics. Fixed
# snippets: the IPC endpoint does not run arbitrary script in the page.
PROBES = {
    "messages": """Array.from(document.querySelectorAll('.msg')).map(e => ({
        role: e.classList.contains('user') ? 'user' : 'assistant',
        text: e.querySelector('.body').innerText,
        html: e.querySelector('.body').innerHTML,
        streaming: e.classList.contains('cursor')}))""",
    "safety": """(() => {
        const root = document.getElementById('messages');
        const bad = root.querySelectorAll(
            'script,iframe,frame,object,embed,svg,math,img,style,link,meta,form,input,video,audio,base');
        let handlers = 0, jsLinks = 0;
        for (const el of root.querySelectorAll('*')) {
            for (const a of el.attributes) {
                if (a.name.toLowerCase().startsWith('on')) handlers++;
                if (/^\\s*(javascript|vbscript|data):/i.test(a.value)) jsLinks++;
            }
        }
        return {bad: bad.length, handlers: handlers, jsLinks: jsLinks,
                pwned: window.__pwned === true, title: document.title};
    })()""",
    # Each reply's first and latest batch as the page received them (web/app.js).
    "stream_times": "window.rmm ? window.rmm.streamTimes : null",
    # The prompt form, the "/" picker and the builder, as shown (web/prompts.js).
    "prompts": "window.rmmPrompts ? window.rmmPrompts.probe() : null",
    # "visible" while the window is shown (WebKit follows the widget's mapping).
    "visibility": "document.visibilityState",
    "focus": "document.hasFocus() && document.activeElement ? document.activeElement.id : null",
    # The chat's system prompt in its header and its editor (web/system.js).
    "system": "window.rmm && window.rmm.systemProbe ? window.rmm.systemProbe() : null",
    # The cut-off notes and the Continue button, as shown (web/continue.js).
    "continue": "window.rmm && window.rmm.continueProbe ? window.rmm.continueProbe() : null",
    # Versions, the edit state and the History view, as shown (web/history.js).
    "history": "window.rmm && window.rmm.history ? window.rmm.history.probe() : null",
    "state": "document.getElementById('state').textContent + '|' + document.getElementById('model').value",
    # Which view shows, and the focused control as the Models view labels it.
    "view": """(() => {
        const a = document.activeElement;
        return {view: document.body.dataset.view, focus: a ? (a.id || a.dataset.action || a.tagName) : null,
                focusText: a ? a.textContent : null, focusFile: a ? (a.dataset.file || null) : null,
                picker: Array.from(document.getElementById('model').options).map(o => o.value)};
    })()""",
    # What the Models view lists, as shown (text read back from the DOM).
    "models": """(() => {
        const rows = (sel) => Array.from(document.querySelectorAll(sel));
        const repo = document.getElementById('repo');
        return {
            results: rows('#results .result').map(e => e.dataset.repo),
            repo: repo.hidden ? null : {
                id: repo.querySelector('.repo-title').textContent,
                license: (repo.querySelector('.license') || {}).textContent || null,
                summary: (repo.querySelector('.summary') || {}).textContent || null,
                files: rows('#repo .file').map(e => ({
                    name: e.dataset.file, fit: e.dataset.fit, recommended: e.dataset.recommended === '1',
                    button: e.querySelector('button[data-action]').textContent}))},
            downloads: rows('#download-list .download').map(e => ({
                name: e.dataset.name, state: e.dataset.state,
                pct: Number(e.querySelector('progress').value),
                text: e.querySelector('.download-meta').textContent})),
            local: rows('#local-list .local').map(e => ({
                name: e.dataset.name, loaded: e.dataset.loaded === '1', default: e.dataset.default === '1'})),
            found: rows('#found-list .found').map(e => e.dataset.name),
            error: document.getElementById('models-error').hidden ? null
                : document.getElementById('models-error').textContent,
        };
    })()""",
    # The Servers pane and its Add server form, as shown (web/servers.js).
    "servers": "window.rmm && window.rmm.serversProbe ? window.rmm.serversProbe() : null",
    "servers_text": "document.getElementById('servers').innerText",
    # The open settings form of a model: each field's value and placeholder, as shown.
    "settings": """(() => {
        const form = document.getElementById('model-settings');
        if (!form || form.hidden) return null;
        const fields = {};
        for (const i of form.querySelectorAll('input[data-key]'))
            fields[i.dataset.key] = {value: i.value, placeholder: i.placeholder};
        const error = form.querySelector('.form-error');
        return {name: form.dataset.name, fields: fields, error: error.hidden ? null : error.textContent,
                trained: form.querySelector('.trained').textContent};
    })()""",
    # The Settings view as shown: each field's value and the message beside it.
    "settings_view": """(() => {
        const form = document.getElementById('settings-form');
        const fields = {};
        for (const i of form.querySelectorAll('[data-name]')) {
            if (!i.id.startsWith('set-')) continue;
            const msg = document.getElementById(i.id + '-msg');
            fields[i.dataset.name] = {value: i.type === 'checkbox' ? i.checked : i.value,
                invalid: i.getAttribute('aria-invalid') === 'true',
                message: msg && !msg.hidden ? msg.textContent : null};
        }
        return {view: document.body.dataset.view, theme: document.documentElement.dataset.theme,
                fields: fields, plugins: Array.from(form.querySelectorAll('.plugin')).map(
                    e => ({name: e.dataset.name, status: e.querySelector('.plugin-status').textContent}))};
    })()""",
    # The first run's welcome and the suggested models, as shown.
    "welcome": """(() => {
        const card = document.getElementById('welcome');
        const curated = document.getElementById('curated');
        return {welcome: card ? card.innerText : null, view: document.body.dataset.view,
                suggested: curated.hidden ? null : Array.from(curated.querySelectorAll('.suggestion')).map(
                    e => ({repo: e.dataset.repo, fit: e.dataset.fit, text: e.innerText}))};
    })()""",
    # The chat's error notice as shown, and the model picker's labels and tooltips.
    "notice": """(() => {
        const box = document.getElementById('error');
        const picker = document.getElementById('model');
        return {text: box.hidden ? null : box.querySelector('.error-text').textContent,
                dismiss: !!box.querySelector('.error-close'),
                options: Array.from(picker.options).map(o => ({value: o.value, label: o.textContent,
                    title: o.title}))};
    })()""",
    # The transcript's scroll position and the "Jump to latest" button, as shown
    # (boxes in the window's own pixels, for pointing at them).
    "scroll": """(() => {
        const m = document.getElementById('messages'), j = document.getElementById('jump-latest');
        const box = (e) => { const r = e.getBoundingClientRect();
            return {x: Math.round(r.left + r.width / 2), y: Math.round(r.top + r.height / 2)}; };
        return {top: m.scrollTop, height: m.scrollHeight, client: m.clientHeight, middle: box(m),
                jump: j && !j.hidden ? {...box(j), text: j.textContent} : null,
                streaming: !!document.querySelector('.msg.cursor')};
    })()""",
    # Whether the page fits its window: no horizontal scroll bar.
    "layout": """({view: document.body.dataset.view, innerWidth: window.innerWidth,
        scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
        overflowing: Array.from(document.querySelectorAll('body *')).filter(e => e.offsetParent !== null
            && e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.id || e.className).slice(0, 5)})""",
}

WIDTH, HEIGHT = 560, 680


class CoreLink:
    """One connection to the core: the page's calls go out, events come in."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._send_lock = threading.Lock()
        self.window: webview.Window | None = None
        self.visible = False
        #: Set once pywebview has made the GTK window (its before_show): a show that
        #: comes sooner (the core sends one as soon as the popup says hello) would
        #: otherwise take pywebview's plain show, centred, forgetting the saved place.
        self.gtk_ready = threading.Event()
        self.hide_on_blur = False
        self.quitting = False
        #: Whether an event has reached the page's own scripts (see to_page).
        self._page_ready = False
        #: The data folder (its exports/ is where a save dialog opens).
        self.home: Path | None = None
        #: A dialog of ours is open: the popup losing focus to it is not a blur.
        self.in_dialog = False

    def call(self, method: str, *args: Any) -> None:
        """One way: the core answers with events to the page, never a reply."""
        with self._send_lock:
            ipc.send_json(self.conn, {"cmd": "js", "method": method, "args": list(args)})

    def export_to(self, chat_id: str, fmt: str, path: str) -> None:
        with self._send_lock:
            ipc.send_json(self.conn, {"cmd": "export-to", "chat_id": chat_id, "fmt": fmt, "path": path})

    def run(self) -> None:
        while True:
            try:
                message = ipc.recv_json(self.conn)
            except (EOFError, OSError, ipc.IPCError) as exc:
                # The core went away, stalled mid-message or sent something that is
                # not JSON: the link cannot be trusted any more; the core starts a new popup.
                log.info("the link to the core ended (%s); closing the popup",
                         str(exc) or type(exc).__name__)
                self._quit()
                return
            try:
                if not isinstance(message, dict):
                    raise TypeError(f"not an event: {type(message).__name__}")
                self._dispatch(message)
            except Exception:  # one bad message must not end the link
                log.exception("popup could not handle %r", message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "show" or (event == "toggle" and not self.visible):
            self.show()
        elif event == "hide" or event == "toggle":
            self.hide()
        elif event == "page":
            self.to_page(message["data"])
        elif event == "probe":
            result = None
            if self.window is not None and message.get("what") in PROBES:
                result = self.window.evaluate_js(PROBES[message["what"]])
            with self._send_lock:
                ipc.send_json(self.conn, {"cmd": "probe-result", "id": message.get("id"),
                                          "result": result})
        elif event == "config":
            self.hide_on_blur = bool(message.get("hide_on_blur"))
        elif event == "quit":
            self._quit()

    def to_page(self, data: dict[str, Any]) -> None:
        if self.window is None:
            return
        script = f"window.rmm && window.rmm.receive({json.dumps(data)})"
        if self._page_ready:
            # run_js: the script as it is. evaluate_js escapes it into a string for
            # eval() and stringifies the result, for each of a streaming reply's
            # batches: CPU taken from the cores llama.cpp decodes on.
            self.window.run_js(script)
        else:
            # Until the page's scripts have run: evaluate_js waits for them (run_js
            # only for the load to start, and the event would be lost).
            self.window.evaluate_js(script)
            self._page_ready = True

    def show(self) -> None:
        window = self.window
        if window is None:
            return
        self.visible = True
        self.gtk_ready.wait(30)
        if not _gtk_show_centered(window):
            window.show()
            window.restore()
        self.to_page({"type": "focus"})

    def hide(self) -> None:
        if self.window is not None:
            if self.visible:  # where the person left it, for the next show and start
                popup_geometry.remember(popup_geometry.gtk_parts(self.window)[0])
            self.visible = False
            self.window.hide()
            # The page may go back to the chat (ui.open_on). Off this thread: a hide
            # can come from the window's own close button, on the GTK thread, where
            # evaluate_js would wait for the loop it blocks.
            threading.Thread(target=self._hidden, daemon=True).start()

    def _hidden(self) -> None:
        self.to_page({"type": "hidden"})
        webkit_tuning.trim()  # at rest again: what the shown page freed goes back

    def _quit(self) -> None:
        self.quitting = True
        if self.window is not None:
            self.window.destroy()


def _gtk_show_centered(window: webview.Window) -> bool:
    """GTK: centre on the monitor under the pointer, above other windows, focused."""
    gtk_window, webview_widget = popup_geometry.gtk_parts(window)
    if gtk_window is None:
        return False
    from gi.repository import Gdk, GLib

    def show() -> bool:
        gtk_window.set_keep_above(True)
        gtk_window.show_all()
        display = Gdk.Display.get_default()
        seat = display.get_default_seat() if display else None
        monitor = None
        if seat is not None and seat.get_pointer() is not None:
            _, x, y = seat.get_pointer().get_position()
            monitor = display.get_monitor_at_point(x, y)
        monitor = monitor or (display.get_primary_monitor() if display else None)
        if monitor is not None and not popup_geometry.place(gtk_window, monitor):
            geo = monitor.get_geometry()
            w, h = gtk_window.get_size()
            gtk_window.move(geo.x + (geo.width - w) // 2, geo.y + (geo.height - h) // 2)
        gtk_window.present_with_time(Gdk.CURRENT_TIME)
        if webview_widget is not None:
            webview_widget.grab_focus()
        return False

    GLib.idle_add(show)
    return True


class JsApi:
    """What the page can call (``window.pywebview.api.*``). Calls run on
    pywebview's threads. The methods of ``page_api.PAGE_API`` only forward to the
    core (their list is the table's); hide, blurred and copy are answered here."""

    def __init__(self, link: CoreLink) -> None:
        self._link = link

    def hide(self) -> None:
        self._link.hide()

    def blurred(self) -> None:
        if self._link.hide_on_blur and self._link.visible and not self._link.in_dialog:
            self._link.hide()

    def save_export(self, chat_id: str, fmt: str, name: str) -> str:
        """Export a chat where the person says, in the desktop's save dialog:
        "saved" (the core writes it and tells the page), "cancelled", or
        "no-dialog" (the page then exports into the exports folder)."""
        link = self._link
        folder = (link.home / "exports") if link.home is not None else Path.home()
        link.in_dialog = True
        try:
            chosen = save_dialog(link.window, folder, str(name))
        except Exception:  # a js_api call is an edge
            log.exception("the save dialog failed")
            return "no-dialog"
        finally:
            link.in_dialog = False
        if chosen is None:
            return "no-dialog"
        if not chosen:
            return "cancelled"
        link.export_to(str(chat_id), str(fmt), chosen)
        return "saved"

    def copy(self, text: str) -> bool:
        """Put ``text`` on the clipboard; whether it is there now (the page says
        "Copied" only then)."""
        return copy_to_clipboard(str(text))


def _forwarder(name: str, params: list[str]) -> Any:
    def forward(self: JsApi, *args: Any) -> None:
        # As the page sent them: the core checks and converts them (page_api).
        self._link.call(name, *args)

    forward.__name__ = forward.__qualname__ = name
    # pywebview names the page's parameters after the Python signature.
    forward.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in ["self", *params]])
    return forward


for _name, _entry in PAGE_API.items():
    assert _name not in POPUP_LOCAL and not hasattr(JsApi, _name), _name
    setattr(JsApi, _name, _forwarder(_name, _entry.params))


def _on_gtk_main(fn: Callable[[Any], Any], timeout: float | None = None) -> tuple[bool, Any]:
    """Run ``fn(Gtk)`` on the GTK main thread (where GTK must be touched) and wait
    for it: (True, its result), or (False, None) where there is no GTK, it
    raised (logged), or ``timeout`` passed."""
    try:
        import gi

        gi.require_version("Gtk", "3.0")
        from gi.repository import GLib, Gtk
    except (ImportError, ValueError):
        return False, None
    done = threading.Event()
    out: list[Any] = [False, None]

    def on_main() -> bool:
        try:
            out[:] = [True, fn(Gtk)]
        except Exception:  # the GTK main loop is an edge
            log.exception("%s failed on the GTK thread", getattr(fn, "__name__", "a call"))
        finally:
            done.set()
        return False

    GLib.idle_add(on_main)
    return (out[0], out[1]) if done.wait(timeout) else (False, None)


def save_dialog(window: Any, folder: Path, name: str) -> str | None:
    """GTK's save dialog over the popup: the path chosen, "" when cancelled, None
    where there is no GTK. It asks before replacing a file (pywebview's own
    dialog does not)."""
    parent = popup_geometry.gtk_parts(window)[0] if window is not None else None

    def ask(Gtk: Any) -> str:
        dialog = Gtk.FileChooserDialog(title="Export chat", parent=parent,
                                       action=Gtk.FileChooserAction.SAVE)
        dialog.add_buttons("_Cancel", Gtk.ResponseType.CANCEL, "_Save", Gtk.ResponseType.OK)
        dialog.set_default_response(Gtk.ResponseType.OK)
        dialog.set_do_overwrite_confirmation(True)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            dialog.set_current_folder(str(folder))
        except OSError:
            pass
        dialog.set_current_name(name)
        try:
            return (dialog.get_filename() or "") if dialog.run() == Gtk.ResponseType.OK else ""
        finally:
            dialog.destroy()

    ok, chosen = _on_gtk_main(ask)
    return chosen if ok else None


def copy_to_clipboard(text: str, timeout: float = 5.0) -> bool:
    """GTK: set the clipboard on the GTK main thread and read it back. Elsewhere
    (no GTK): False, and the page says it could not copy."""
    def copy(Gtk: Any) -> bool:
        from gi.repository import Gdk

        clipboard = Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD)
        clipboard.set_text(text, -1)
        clipboard.store()  # a clipboard manager, if any, keeps it after we exit
        return bool(clipboard.wait_for_text() == text)

    ok, copied = _on_gtk_main(copy, timeout)
    return ok and bool(copied)


def _set_app_identity() -> None:
    """WM_CLASS ``RunMyModel``, ``RunMyModel`` and the Wayland app id ``RunMyModel``
    (the launcher's file name), set before the first window: task bars, docks and
    window rules then see the app, not ``popup_process.py``."""
    from rmm_tray.desktop.launcher import APP_ID, WM_CLASS

    try:
        import gi
        from gi.repository import GLib

        GLib.set_prgname(APP_ID)
        GLib.set_application_name(WM_CLASS)
        gi.require_version("Gtk", "3.0")
        gi.require_version("Gdk", "3.0")
        # Importing Gtk initialises it, which derives the class from the program
        # name ("Rmm-tray"): the class is set after that, or it is overwritten.
        from gi.repository import Gdk, Gtk  # noqa: F401
    except (ImportError, ValueError):
        return
    Gdk.set_program_class(WM_CLASS)


def main(argv: list[str]) -> int:
    from rmm_tray.home import logs

    webkit_tuning.apply_env()  # before GTK starts: GDK reads its GL switch once
    webkit_tuning.keep_gl_out()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    home = Path(argv[0])
    logs.setup(home, "popup")
    popup_geometry.configure(home)
    if sys.platform.startswith("linux"):
        _set_app_identity()
    conn = ipc.connect(home)
    ipc.send_json(conn, {"cmd": "popup-hello"})
    link = CoreLink(conn)
    link.home = home
    index = files("rmm_tray.web").joinpath("index.html")
    window = webview.create_window(
        "RunMyModel", url=str(index), js_api=JsApi(link), hidden=True, width=WIDTH,
        height=HEIGHT, min_size=(360, 300), on_top=True, background_color="#15151d",
    )
    link.window = window

    def on_closing() -> bool:
        if link.quitting:
            return True
        link.hide()  # closing hides; only the core ends the popup
        return False

    window.events.closing += on_closing
    # On the GTK thread, after the web view exists and before the page loads.
    def before_show() -> None:  # pywebview keeps what handlers return in a set
        webkit_tuning.tune(popup_geometry.gtk_parts(window)[1])
        link.gtk_ready.set()

    window.events.before_show += before_show
    window.events.loaded += webkit_tuning.trim
    webview.start(lambda: threading.Thread(target=link.run, daemon=True).start(),
                  gui="gtk" if sys.platform.startswith("linux") else None, private_mode=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
