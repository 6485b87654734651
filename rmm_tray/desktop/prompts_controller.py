"""The popup's prompts: the list, a prompt's variable form, running it in a new
chat, and the builder (preview with the model's own template and token count,
save, versions, delete). Calls return at once; results come back as events.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rmm_tray.chat.prompt_model import BLOCK_KINDS, BLOCK_TITLES, INPUT_VARIABLE, PromptTemplate
from rmm_tray.chat.prompt_store import PromptStore
from rmm_tray.chat.prompt_use import cut_to_fit, fill_prompt, preview, start_chat
from rmm_tray.chat.templates import BUILTIN_VARIABLES, template_from_dict, template_to_dict
from rmm_tray.desktop import prompt_hotkeys
from rmm_tray.desktop.work import Background
from rmm_tray.errors import describe

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.desktop.chat_controller import ChatController
    from rmm_tray.desktop.selection import Captured

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]
USER_SOURCE = "prompts folder"


def spec_dict(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "type": spec.type, "default": spec.default,
            "description": spec.description, "required": spec.required,
            "options": list(spec.options), "min": spec.min, "max": spec.max}


@functools.lru_cache(maxsize=4096)
def _payload(t: PromptTemplate, source: str) -> dict[str, Any]:
    return _build_payload(t)


def prompt_payload(t: PromptTemplate) -> dict[str, Any]:
    """A prompt as the page shows it: in the list, its form and the builder.
    Cached per prompt (templates are frozen): a list of a thousand is sent often."""
    try:
        return _payload(t, t.source)
    except TypeError:  # a plugin's template holding lists: not hashable, built each time
        return _build_payload(t)


def _build_payload(t: PromptTemplate) -> dict[str, Any]:
    data = template_to_dict(t)
    names = t.variables
    return {
        "name": t.name, "description": t.description, "source": t.source,
        "editable": t.source == USER_SOURCE, "tags": list(t.tags), "hotkey": t.hotkey,
        "run_immediately": t.run_immediately, "blocks": data["blocks"],
        "variables": data.get("variables", {}),
        "fields": [spec_dict(s) for s in t.specs().values()],
        "builtins": [n for n in names if n in BUILTIN_VARIABLES and n != INPUT_VARIABLE],
        "uses_input": INPUT_VARIABLE in names,
    }


class PromptsController:
    def __init__(self, app: "App", emit: Emit, chat: "ChatController",
                 work: Background | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.app = app
        #: Prompts were saved, restored or deleted (the shell rebinds their hotkeys).
        self.on_change = on_change or (lambda: None)
        self.emit = emit
        self.chat = chat
        self.work = work or Background()
        self.store = PromptStore(app.home.prompts)
        #: The selection and clipboard captured when a hotkey (or the tray) opened a form.
        self.captured: Captured | None = None
        self._counter: Any = None
        self._preview_lock = threading.Lock()
        self._pending: tuple[dict[str, Any], dict[str, Any], str] | None = None
        self._previewing = False

    def _spawn(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return self.work.run(name, fn, *args, on_error=self._failed)

    def _failed(self, line: str) -> None:
        self.emit({"type": "prompts.error", "message": line})

    # -- the list and the form --------------------------------------------------------

    def list(self) -> None:
        self._spawn("list prompts", self._list)

    def _list(self) -> None:
        items = [prompt_payload(t) for t in sorted(self.app.templates().values(),
                                                   key=lambda t: t.name.lower())]
        self.emit({"type": "prompts.list", "items": items,
                   "kinds": [{"kind": k, "title": BLOCK_TITLES[k]} for k in BLOCK_KINDS]})

    def form(self, name: str) -> None:
        """Open ``name``'s variable form in the chat view (the slash picker, the tray)."""
        self._spawn("prompt form", self._form, name, None)

    def show_form(self, template: PromptTemplate, captured: "Captured | None", *,
                  run_now: bool = False) -> None:
        """The tray or a hotkey: the form with the captured text filled; with
        ``run_now``, sent at once when nothing required is left empty."""
        self.captured = captured
        if run_now and self._ready(template):
            self._spawn("run prompt", self._run, template.name, {})
        else:
            self._form(template.name, template)

    def _ready(self, template: PromptTemplate) -> bool:
        return all(s.default or not s.required for s in template.specs().values()) \
            and INPUT_VARIABLE not in template.variables

    def _form(self, name: str, template: PromptTemplate | None) -> None:
        t = template or self.app.template(name)
        captured = self.captured
        values = {"selection": captured.selection or "" if captured else "",
                  "clipboard": captured.clipboard or "" if captured else ""}
        if captured is None and "clipboard" in t.variables:
            from rmm_tray.desktop.selection import capture

            got = capture(selection=False)
            values["clipboard"] = got.clipboard or ""
        notice = captured.notice if captured else ""
        if captured is not None and captured.cut:
            notice = "The selection was very long and was cut."
        self.emit({"type": "prompts.form", "prompt": prompt_payload(t), "captured": values,
                   "notice": notice})

    def run(self, name: str, values: dict[str, Any]) -> None:
        self._spawn("run prompt", self._run, name, values)

    def _run(self, name: str, values: dict[str, Any]) -> None:
        template = self.app.template(name)
        given = {str(k): str(v) for k, v in values.items() if isinstance(v, (str, int, float))}
        captured, self.captured = self.captured, None
        selection = given.pop("selection", None)
        clipboard = given.pop("clipboard", None)
        if captured is not None:
            selection = captured.selection if selection is None else selection
            clipboard = captured.clipboard if clipboard is None else clipboard
        user_input = given.pop(INPUT_VARIABLE, None)
        model = self.chat.current_model()

        def fill(sel: str | None) -> Any:
            return fill_prompt(self.app, template, given, user_input=user_input,
                               selection=sel, clipboard=clipboard, model=model)

        notice = ""
        try:
            rendered = fill(selection)
            # A remote model (SERVER:MODEL, a str) has no local tokenizer to cut by.
            if selection and model is not None and not isinstance(model, str) \
                    and "selection" in template.variables:
                rendered, kept = cut_to_fit(self.app, self.counter(), fill, selection, model)
                if kept is not None:
                    notice = (f"The selection was cut to fit the model's context: the first "
                              f"{kept:,} of {len(selection):,} characters were sent.")
        except Exception as exc:  # a missing or bad value: the form stays, with the reason
            self.emit({"type": "prompts.form_error", "name": name, "message": describe(exc)})
            return
        if model is None:
            self.chat._no_model(rendered.user)
            return
        self.emit({"type": "prompts.ran", "name": name})
        self.chat.stop()
        chat_id = start_chat(self.app, template, rendered, model=self.app.model_name(model),
                             source="popup")
        self.chat.open_chat(chat_id)
        self.emit({"type": "prompts.system", "chat_id": chat_id, "text": rendered.system or "",
                   "prompt": name, "notice": notice})
        self.chat.send_in(chat_id, rendered.user)

    # -- the builder --------------------------------------------------------------------

    def open(self, name: str) -> None:
        self._spawn("open prompt", lambda: self.emit(
            {"type": "prompts.open", "prompt": prompt_payload(self.app.template(name))}))

    def preview(self, draft: dict[str, Any], values: dict[str, Any], seq: str) -> None:
        """Coalesced: while one preview is computed, only the newest request waits."""
        with self._preview_lock:
            self._pending = (draft, values, seq)
            if self._previewing:
                return
            self._previewing = True
        self._spawn("prompt preview", self._preview_loop)

    def _preview_loop(self) -> None:
        try:
            while True:
                with self._preview_lock:
                    job, self._pending = self._pending, None
                    if job is None:
                        self._previewing = False
                        return
                self._preview(*job)
        except BaseException:
            with self._preview_lock:
                self._previewing = False
            raise

    def counter(self) -> Any:
        if self._counter is None:
            from rmm_tray.engine.prompt_count import PromptCounter

            self._counter = PromptCounter()
        return self._counter

    def _preview(self, draft: dict[str, Any], values: dict[str, Any], seq: str) -> None:
        event: dict[str, Any] = {"type": "prompts.preview", "seq": seq, "error": None}
        try:
            t = self._draft(draft, check=False)
        except Exception as exc:
            # A spec being typed (a choice without options yet): the preview goes
            # on without the specs, and says what is wrong with them.
            event["error"] = describe(exc)
            try:
                t = self._draft({**draft, "variables": {}}, check=False)
            except Exception as again:
                self.emit({**event, "error": describe(again), "messages": [], "problems": []})
                return
        # Before the count, which can take a while: a clash shows beside the
        # hotkey field as soon as the keys are pressed.
        self.emit({"type": "prompts.hotkey", "seq": seq, "hotkey": t.hotkey,
                   "message": prompt_hotkeys.problem(self.app, t)})
        names, problems = t.scan()
        given = {str(k): str(v) for k, v in (values or {}).items() if v not in (None, "")}
        rendered = fill_prompt(self.app, t, given, selection=given.pop("selection", None),
                               clipboard=given.pop("clipboard", None),
                               user_input=given.pop(INPUT_VARIABLE, None),
                               model=self.chat.current_model(), sample=True)
        shown = preview(self.app, self.counter(), rendered, self.chat.current_model())
        self.emit({**shown.to_dict(), **event, "variables": names,
                   "problems": [{"block": p.block, "start": p.start, "end": p.end, "line": p.line,
                                 "column": p.column, "message": p.message} for p in problems]})

    def _draft(self, draft: dict[str, Any], *, check: bool = True) -> PromptTemplate:
        name = str(draft.get("name") or "untitled")
        data = {k: v for k, v in draft.items() if k != "name"}
        t = template_from_dict(name, data, name)
        if check:
            t.check()
        return t

    def save(self, draft: dict[str, Any], overwrite: str) -> None:
        self._spawn("save prompt", self._save, draft, overwrite == "yes")

    def _save(self, draft: dict[str, Any], overwrite: bool) -> None:
        try:
            t = self._draft(draft)
            prompt_hotkeys.check(self.app, t)
        except Exception as exc:  # the draft stays in the builder with the reason
            self.emit({"type": "prompts.save_error", "message": describe(exc)})
            return
        original = str(draft.get("original") or "")
        clash = t.name != original and t.name in self.app.templates()
        if clash and not overwrite:
            self.emit({"type": "prompts.confirm_overwrite", "name": t.name})
            return
        self.store.save(replace(t, source=USER_SOURCE))
        self.emit({"type": "prompts.saved", "name": t.name})
        self._list()
        self.on_change()

    def delete(self, name: str) -> None:
        def go() -> None:
            self.store.delete(name)
            self.emit({"type": "prompts.deleted", "name": name})
            self._list()
            self.on_change()

        self._spawn("delete prompt", go)

    def versions(self, name: str) -> None:
        def go() -> None:
            items = [{"version": v.number, "saved": v.saved} for v in self.store.versions(name)]
            self.emit({"type": "prompts.versions", "name": name, "items": items})

        self._spawn("prompt versions", go)

    def restore(self, name: str, version: str) -> None:
        def go() -> None:
            self.store.restore(name, int(version))
            self.emit({"type": "prompts.saved", "name": name, "restored": int(version)})
            self.emit({"type": "prompts.open", "prompt": prompt_payload(
                replace(self.store.load(name), source=USER_SOURCE))})
            self._list()
            self.on_change()

        self._spawn("restore prompt", go)

    def close(self) -> None:
        if self._counter is not None:
            self._counter.close()
