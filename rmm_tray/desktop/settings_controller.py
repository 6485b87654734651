"""What the popup's Settings view asks of the app. The checks and the writing are
home/config_values' (the ones `rmm-tray config set` uses); this module only
lays the form out, applies what can change at once, and says what needs a restart.

Events to the page:

- ``settings.form`` {sections: [{title, fields: [field]}], plugins: [plugin], home, notice}
  where a field is {name, label, kind, value, choices, hint, restart} and kind is one of
  text, int, number, bool, choice, hotkey
- ``settings.check`` {name, value, message}: the value as typed, and why it cannot be saved
  (None when it can)
- ``settings.saved`` {name, value, message}: written; the message says when it applies
- ``settings.applied`` {theme, open_on}: what the page itself changes at once
- ``settings.error`` {message}

Nothing here imports a GUI toolkit or llama.cpp.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from rmm_tray.desktop import hotkey_check, launcher, prompt_hotkeys
from rmm_tray.desktop.work import Background
from rmm_tray.errors import RmmError, describe
from rmm_tray.home import config_values, settings_check
from rmm_tray.home.config import ConfigError

if TYPE_CHECKING:
    from rmm_tray.app import App

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]
AUTOSTART = "desktop.autostart"
FIRST_PARTY = "first-party"


class SettingsShell(Protocol):
    """What the settings need of the running app (shell.desktop.DesktopApp)."""

    def rebind_hotkey(self, combo: str) -> str | None:
        """Listen for ``combo`` now; None when it is active, else why not."""

    def hotkey_status(self) -> str | None:
        """None when the hotkey is active; else why not (a line for a person)."""

    def popup_config(self) -> None:
        """Send the popup its window settings again (hide on blur)."""

    def open_data_folder(self) -> None: ...


#: The form, section by section: (dotted name, kind). Choices and values come
#: from the config and the app when the form is sent.
LAYOUT: list[tuple[str, list[tuple[str, str]]]] = [
    ("General", [("ui.hotkey", "hotkey"), ("ui.hide_on_blur", "bool"), ("ui.theme", "choice"),
                 (AUTOSTART, "bool"), ("ui.open_on", "choice")]),
    ("Model", [("model.default", "choice"), ("model.context_length", "int"),
               ("model.gpu_layers", "int"), ("model.threads", "int")]),
    ("Generation", [("generation.max_tokens", "int"), ("generation.temperature", "number"),
                    ("generation.top_p", "number"), ("generation.top_k", "int"),
                    ("generation.min_p", "number"), ("generation.repeat_penalty", "number")]),
    ("History", [("history.backend", "choice")]),
    ("Local API", [("server.enabled", "bool"), ("server.host", "text"), ("server.port", "int"),
                   ("server.api_key", "secret"), ("server.save_chats", "bool")]),
]
LABELS = {AUTOSTART: "Start at login", "history.backend": "History backend",
          "server.enabled": "Run the local API with the tray app",
          "server.save_chats": "Save the API's chats to history"}
HINTS = {
    AUTOSTART: "an entry in your desktop's autostart folder",
    "ui.hotkey": "press Record, then the keys",
    "model.default": "loaded on first use",
    "model.context_length": "tokens; clamped to what the model was trained for",
}
#: Settings read at each reply: the next reply uses them (a model reloads for its load-time ones).
NEXT_REPLY = ("model.context_length", "model.gpu_layers", "model.threads")


class SettingsController:
    def __init__(self, app: "App", emit: Emit, *, shell: SettingsShell,
                 work: Background | None = None) -> None:
        self.app = app
        self.emit = emit
        self.shell = shell
        self.work = work or Background()

    # -- what the page calls (each returns at once) -----------------------------

    def open(self) -> None:
        self._spawn("settings", self._send_form)

    def check(self, values: dict[str, Any]) -> None:
        """As the person types: say beside the field whether it could be saved."""
        self._spawn("settings check", self._check, values)

    def save(self, values: dict[str, Any]) -> None:
        self._spawn("settings save", self._save, values)

    def set_plugin(self, name: str, enabled: str) -> None:
        self._spawn("plugin switch", self._set_plugin, name, enabled in ("1", "true", "on"))

    def open_folder(self) -> None:
        self._spawn("open data folder", self.shell.open_data_folder)

    # -- the work ------------------------------------------------------------

    def _spawn(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        self.work.run(name, fn, *args,
                      on_error=lambda line: self.emit({"type": "settings.error", "message": line}))

    def form(self) -> dict[str, Any]:
        config = self.app.config
        known = set(config_values.known_names())
        sections = []
        for title, fields in LAYOUT:
            out = []
            for name, kind in fields:
                if name != AUTOSTART and name not in known:
                    continue  # a setting this version's config.toml does not have
                value = launcher.autostart_enabled() if name == AUTOSTART else config_values.get(config, name)
                out.append({
                    "name": name, "kind": kind, "value": value, "label": self._label(name),
                    # A list of choices says itself what the value may be.
                    "choices": self._choices(name),
                    "hint": self._hint(name) if kind != "choice" or name in HINTS else "",
                    "restart": config_values.needs_restart([name]) != [],
                    **({"shown": hotkey_check.label(value)} if kind == "hotkey" else {}),
                })
            if out:
                sections.append({"title": title, "fields": out})
        hotkey = self.shell.hotkey_status()
        return {"type": "settings.form", "sections": sections, "plugins": self._plugins(),
                "home": str(self.app.home.root), "hotkey_problem": hotkey}

    def _send_form(self) -> None:
        """The form as config.toml has it now: a change made with `rmm-tray config
        set` or an editor since the app started shows too (and applies)."""
        from rmm_tray.home.config import Config

        try:
            self.app.config = Config.load(self.app.home.config_file)
        except ConfigError as exc:  # the file is broken: the form shows what the app runs with
            self.emit({"type": "settings.error", "message": f"{describe(exc)}; showing the settings in use"})
        self.emit(self.form())

    def _label(self, name: str) -> str:
        return LABELS.get(name) or config_values.label(name)

    def _hint(self, name: str) -> str:
        if name in HINTS:
            return HINTS[name]
        if name == AUTOSTART:
            return ""
        section, key = config_values.split_name(name)
        rule = settings_check.rule(section, key)
        return rule.what if rule and rule.what else ""

    def _choices(self, name: str) -> list[list[str]] | None:
        if name == "ui.theme":
            return [["system", "Follow the system"], ["light", "Light"], ["dark", "Dark"]]
        if name == "ui.open_on":
            return [["last", "The last view"], ["chat", "Always the chat"]]
        if name == "model.default":
            from rmm_tray.models.store import list_models

            names = [m.name for m in list_models(self.app.home.models) if not m.error]
            current = str(self.app.config["model"]["default"])
            if current and current not in names:
                names.append(current)
            return [["", "The first model found"], *([n, n] for n in names)]
        if name == "history.backend":
            backends = self.app.plugins.collect(
                "register_history_backends", lambda o: hasattr(o, "name"), "HistoryBackend", app=self.app)
            names = sorted({b.name for _, b in backends} | {str(self.app.config["history"]["backend"])})
            return [[n, n] for n in names]
        return None

    def _plugins(self) -> list[dict[str, Any]]:
        disabled = list(self.app.config["plugins"]["disabled"])
        # "enabled" is what config.toml says, which the next start follows.
        out = [{"name": i.name, "source": i.source, "version": i.version, "error": i.error,
                "enabled": i.name not in disabled, "switchable": i.source != FIRST_PARTY}
               for i in self.app.plugins.tried]
        seen = {p["name"] for p in out}
        out += [{"name": n, "source": "", "version": "", "error": None, "enabled": False,
                 "switchable": True} for n in disabled if n not in seen]
        return out

    def problem(self, name: str, value: Any) -> tuple[Any, str | None]:
        """The value as it would be saved and None, or the value as typed and
        why it cannot be."""
        if name == AUTOSTART:
            if not isinstance(value, bool):
                return value, f"Start at login should be true or false, got {settings_check.shown(value)}"
            return value, None
        try:
            clean = config_values.checked(name, value)
        except ConfigError as exc:
            return value, describe(exc)
        if name == "ui.hotkey":
            why = prompt_hotkeys.main_hotkey_problem(self.app, clean)
            if why is not None:
                return value, why
        return clean, None

    def _check(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            _, message = self.problem(str(name), value)
            self.emit({"type": "settings.check", "name": name, "value": value, "message": message})

    def _save(self, values: dict[str, Any]) -> None:
        """One field at a time from the form (it saves as each is changed): a bad
        one is refused beside its field and the file is left as it was."""
        for name, value in values.items():
            name = str(name)
            clean, message = self.problem(name, value)
            if message is not None:
                self.emit({"type": "settings.check", "name": name, "value": value, "message": message})
                continue
            try:
                note = self._apply(name, clean)
            except RmmError as exc:  # a write that failed: the field keeps what was typed
                self.emit({"type": "settings.check", "name": name, "value": value,
                           "message": describe(exc)})
                continue
            self.emit({"type": "settings.check", "name": name, "value": clean, "message": None})
            shown = {"shown": hotkey_check.label(clean)} if name == "ui.hotkey" else {}
            self.emit({"type": "settings.saved", "name": name, "value": clean, "message": note, **shown})

    def _apply(self, name: str, value: Any) -> str:
        if name == AUTOSTART:
            launcher.set_autostart(value)
            return "Starts at login" if value else "No longer starts at login"
        self.app.config = config_values.set_values(self.app.home.config_file, {name: value})
        if config_values.needs_restart([name]):
            return "Saved; applies from the next start of the app"
        if name == "ui.hotkey":
            why = self.shell.rebind_hotkey(value)
            if why is not None:
                return f"Saved, but the hotkey is off: {why}"
            return f"Saved; {hotkey_check.label(value)} opens the chat now"
        if name == "ui.hide_on_blur":
            self.shell.popup_config()
        if name in ("ui.theme", "ui.open_on"):
            ui = self.app.config["ui"]
            self.emit({"type": "settings.applied", "theme": ui["theme"], "open_on": ui["open_on"]})
        if name in NEXT_REPLY:
            return "Saved; the model reloads with it on the next reply"
        if name.startswith("generation.") or name == "model.default":
            return "Saved; applies from the next reply" if name != "model.default" else \
                "Saved; loaded on the next start, or pick it in the model list now"
        return "Saved"

    def _set_plugin(self, name: str, enabled: bool) -> None:
        known = {p["name"]: p for p in self._plugins()}
        if name not in known:
            raise RmmError(f"no plugin named {settings_check.shown(name)}")
        if not known[name]["switchable"]:
            raise RmmError(f"{name} is part of the app and cannot be turned off")
        disabled = [n for n in self.app.config["plugins"]["disabled"] if n != name]
        if not enabled:
            disabled.append(name)
        self.app.config = config_values.set_values(self.app.home.config_file,
                                                   {"plugins.disabled": disabled})
        self.emit({**self.form(), "refresh": "plugins"})
        word = "turned on" if enabled else "turned off"
        self.emit({"type": "settings.saved", "name": "plugins.disabled", "value": disabled,
                   "message": f"{name} is {word} from the next start of the app"})
