"""Using a prompt: its preview (messages, the model's prompt text, tokens, fit)
and the chat it starts. One implementation for the CLI, the popup and the API."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.chat.history import ChatMessage
from rmm_tray.chat.prompt_model import Rendered
from rmm_tray.chat.prompt_vars import use_time_values
from rmm_tray.chat.templates import PromptTemplate

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.engine.prompt_count import PromptCounter

log = logging.getLogger(__name__)

#: Below this share of the context the prompt and the reply budget "fit";
#: up to the whole context they are "tight"; beyond it "over".
TIGHT_SHARE = 0.9


@dataclass
class Preview:
    messages: list[dict[str, str]]
    #: The prompt text through the model's chat template (None: no model to count with).
    text: str | None = None
    tokens: int | None = None
    n_ctx: int | None = None
    reply_budget: int = 0
    fit: str = ""  # "fits" | "tight" | "over" | "" (not counted)
    model: str = ""
    sampled: list[str] = field(default_factory=list)
    count_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_of(tokens: int, budget: int, n_ctx: int) -> str:
    need = tokens + budget
    if need <= n_ctx * TIGHT_SHARE:
        return "fits"
    return "tight" if need <= n_ctx else "over"


def context_for_model(app: "App", model: Path, trained: int) -> int:
    """The context the engine opens ``model`` with (its setting, capped by training)."""
    wanted = app.engine_settings(model).context_length
    return min(wanted, trained) if wanted > 0 and trained else (wanted or trained)


def count_messages(app: "App", counter: "PromptCounter", messages: list[dict[str, str]],
                   model: Path | None = None) -> Preview:
    """``messages`` as ``model`` (the default) would see them, counted."""
    model = model or app.default_model()
    counted = counter.count(model, messages, chat_template=app.engine_settings(model).chat_template)
    n_ctx = context_for_model(app, model, counted.n_ctx_train)
    budget = app.gen_params(model).max_tokens
    return Preview(messages, counted.text, counted.tokens, n_ctx, budget,
                   fit_of(counted.tokens, budget, n_ctx), app.model_name(model))


def fill_prompt(
    app: "App",
    template: PromptTemplate,
    values: Mapping[str, str],
    *,
    user_input: str | None = None,
    selection: str | None = None,
    clipboard: str | None = None,
    model: Path | None = None,
    sample: bool = False,
) -> Rendered:
    """The prompt with the person's values and the use-time ones filled."""
    name = ""
    try:
        name = app.model_name(model or app.default_model())
    except Exception:  # no model yet: {{model}} is empty, the prompt still renders
        log.debug("no default model for {{model}}", exc_info=True)
    builtins = use_time_values(app, template, selection=selection, clipboard=clipboard, model=name)
    return template.fill(values, builtins=builtins, user_input=user_input, sample=sample)


def preview(app: "App", counter: "PromptCounter | None", rendered: Rendered,
            model: Path | None = None) -> Preview:
    messages = rendered.messages()
    if counter is None:
        return Preview(messages, sampled=list(rendered.sampled))
    try:
        out = count_messages(app, counter, messages, model)
    except Exception as exc:  # a missing model must not stop the preview of the messages
        from rmm_tray.errors import describe

        return Preview(messages, sampled=list(rendered.sampled), count_error=describe(exc))
    out.sampled = list(rendered.sampled)
    return out


def start_chat(app: "App", template: PromptTemplate, rendered: Rendered, *,
               model: str | None, source: str = "") -> str:
    """A new chat holding the prompt's system message and examples; the user
    message is the Turn's to send. The chat records the prompt it came from
    where the history backend keeps that."""
    history = app.history
    title = " ".join(f"{template.name}: {rendered.user}".split())[:60]
    extra: dict[str, Any] = {}
    try:
        params = inspect.signature(history.create_chat).parameters
    except (TypeError, ValueError):
        params = {}
    if "template" in params:
        extra["template"] = template.name
    if "system" in params and rendered.system:
        extra["system"] = rendered.system
    if source and "source" in params:
        extra["source"] = source
    chat_id = history.create_chat(title=title, model=model, **extra)
    if rendered.system:
        history.append_message(chat_id, ChatMessage("system", rendered.system))
    for user, reply in rendered.examples:
        history.append_message(chat_id, ChatMessage("user", user))
        history.append_message(chat_id, ChatMessage("assistant", reply, model=model))
    return chat_id


def cut_to_fit(app: "App", counter: "PromptCounter", fill: Callable[[str], Rendered],
               selection: str, model: Path | None = None) -> tuple[Rendered, int | None]:
    """``fill(selection)``, with the selection cut from its end until the prompt and
    the reply budget fit the model's context; the characters kept, or None when
    nothing was cut (or nothing could be counted)."""
    rendered = fill(selection)
    try:
        counted = count_messages(app, counter, rendered.messages(), model)
    except Exception:  # nothing to count with: the engine says so when it runs
        log.debug("selection not counted", exc_info=True)
        return rendered, None
    if counted.fit != "over" or not selection:
        return rendered, None
    keep = len(selection)
    for _ in range(8):
        assert counted.tokens is not None and counted.n_ctx is not None
        room = counted.n_ctx - counted.reply_budget
        # The selection is most of such a prompt: shrink it by the share that is over.
        keep = max(0, int(keep * min(0.95, room / max(counted.tokens, 1))))
        rendered = fill(selection[:keep])
        counted = count_messages(app, counter, rendered.messages(), model)
        if counted.fit != "over" or keep == 0:
            break
    return rendered, keep
