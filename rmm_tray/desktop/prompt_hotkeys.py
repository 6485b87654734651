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


def prompt_uses(templates: Iterable[PromptTemplate], *, besides: str = "") -> dict[str, str]:
    """combo -> "the hotkey of prompt 'NAME'" for each prompt with a hotkey but
    ``besides``: what the main hotkey's check (Settings) and a prompt's own see."""
    return {t.hotkey: f"the hotkey of prompt '{t.name}'"
            for t in sorted(templates, key=lambda t: t.name) if t.hotkey and t.name != besides}


def others_for(app: "App", name: str, templates: Iterable[PromptTemplate]) -> dict[str, str]:
    """Every other hotkey of the app, combo -> what it does."""
    return {main_hotkey(app): "the main hotkey (it opens the chat)", **POPUP_KEYS,
            **prompt_uses(templates, besides=name)}


def main_hotkey_problem(app: "App", combo: str) -> str | None:
    """Why ``combo`` cannot be the main hotkey (hotkey_check's rules, and not a
    key the popup or a prompt already uses), or None."""
    try:
        templates = app.templates().values()
    except Exception as exc:  # a broken prompts folder must not stop Settings
        log.warning("prompts not read for the hotkey check: %s", exc)
        templates = []
    return hotkey_check.problem(combo, {**POPUP_KEYS, **prompt_uses(templates)})


def problem(app: "App", template: PromptTemplate,
            templates: Iterable[PromptTemplate] | None = None) -> str | None:
    """Why ``template``'s hotkey cannot be bound as it is (None: it can, or it
    has none): the Prompt Architect shows it beside the field as it is pressed."""
    if not template.hotkey:
        return None
    known = list(templates if templates is not None else app.templates().values())
    return hotkey_check.problem(template.hotkey, others_for(app, template.name, known))


def check(app: "App", template: PromptTemplate,
          templates: Iterable[PromptTemplate] | None = None) -> None:
    """TemplateError when ``template``'s hotkey cannot be bound as it is."""
    why = problem(app, template, templates)
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
