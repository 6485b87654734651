"""Variables filled at the moment a prompt is used: the built-ins and those plugins add."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rmm_tray.chat.prompt_model import BUILTIN_VARIABLES, PromptTemplate, PromptVariable

if TYPE_CHECKING:
    from rmm_tray.app import App

log = logging.getLogger(__name__)


def plugin_variables(app: "App") -> dict[str, PromptVariable]:
    found: dict[str, PromptVariable] = {}
    for plugin, var in app.plugins.collect(
        "register_prompt_variables", lambda o: isinstance(o, PromptVariable),
        "PromptVariable", app=app,
    ):
        if var.name in BUILTIN_VARIABLES or var.name in found:
            log.warning("plugin %s: prompt variable %r is taken; skipped", plugin, var.name)
            continue
        found[var.name] = var
    return found


def use_time_values(
    app: "App",
    template: PromptTemplate,
    *,
    selection: str | None = None,
    clipboard: str | None = None,
    model: str = "",
    names: Iterable[str] | None = None,
) -> dict[str, str]:
    """The built-in and plugin values ``template`` uses (only those: a plugin's
    function runs only for a prompt that names it, on the plugin host's thread
    with its time limit). ``selection``/``clipboard`` None: not captured, empty."""
    used = set(names if names is not None else template.variables)
    now = dt.datetime.now()
    values = {
        "selection": selection or "",
        "clipboard": clipboard or "",
        "date": now.date().isoformat(),
        "time": now.strftime("%H:%M"),
        "model": model,
    }
    out = {k: v for k, v in values.items() if k in used}
    wanted = used - set(BUILTIN_VARIABLES) - {v.name for v in template.variable_specs}
    if wanted:
        variables = plugin_variables(app)
        for name in sorted(wanted & set(variables)):
            results = app.plugins.call_function(variables[name].value, name)
            if results is not None and isinstance(results, str):
                out[name] = results
            else:
                log.warning("prompt variable %s gave no text; left empty", name)
                out[name] = ""
    return out
