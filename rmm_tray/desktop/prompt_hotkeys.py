"""Per-prompt global hotkeys: which prompt each combination opens, and the
clashes refused (with the main hotkey, with another prompt's, with the keys the
desktop and the popup already use). Judged without pynput (hotkey_check)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rmm_tray.chat.prompt_model import PromptTemplate, TemplateError
from rmm_tray.desktop import hotkey_check

if TYPE_CHECKING:
    from rmm_tray.app import App

log = logging.getLogger(__name__)

#: The popup's own key for the Prompts view.
POPUP_KEYS = {"<ctrl>+p": "the popup's Prompts view"}


def main_hotkey(app: "App") -> str:
    return str(app.config["ui"]["hotkey"])


def others_for(app: "App", name: str, templates: Iterable[PromptTemplate]) -> dict[str, str]:
    """Every other hotkey of the app, combo -> what it does."""
    out = {main_hotkey(app): "the main hotkey (it opens the chat)", **POPUP_KEYS}
    for t in templates:
        if t.hotkey and t.name != name:
            out[t.hotkey] = f"the hotkey of prompt '{t.name}'"
    return out


def check(app: "App", template: PromptTemplate,
          templates: Iterable[PromptTemplate] | None = None) -> None:
    """TemplateError when ``template``'s hotkey cannot be bound as it is."""
    if not template.hotkey:
        return
    known = list(templates if templates is not None else app.templates().values())
    why = hotkey_check.problem(template.hotkey, others_for(app, template.name, known))
    if why is not None:
        raise TemplateError(f"prompt '{template.name}': {why}")


def bindings(app: "App") -> dict[str, str]:
    """combo -> prompt name for every prompt hotkey that can be bound; the others
    are skipped with a warning (first come, by name, wins a clash)."""
    templates = sorted(app.templates().values(), key=lambda t: t.name)
    out: dict[str, str] = {}
    bound: list[PromptTemplate] = []
    for t in templates:
        if not t.hotkey:
            continue
        try:
            check(app, t, bound)
        except TemplateError as exc:
            log.warning("prompt hotkey not bound: %s", exc)
            continue
        bound.append(t)
        out[t.hotkey] = t.name
    return out
