"""One turn of a chat, end to end: history, message filters, engine, saving.

Shared by the CLI and the popup. The user's message is stored before the model
sees it; the reply is stored as it streams (see the history backend), so a crash
or a kill loses nothing that was already on screen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rmm_tray.chat.drafts import MessageDraft
from rmm_tray.chat.history import ROOT, ChatMessage, HistoryBackend, active_path, title_from

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.engine import ChatStream, Event, GenParams

log = logging.getLogger(__name__)

#: How often a streaming reply is written to history.
PARTIAL_EVERY_S = 0.2


@dataclass
class TurnResult:
    chat_id: str
    reply: ChatMessage | None = None
    error: str | None = None


def engine_messages(branch: list[ChatMessage], system: str | None) -> list[dict[str, str]]:
    """The branch as the engine reads it. ``system``, the chat's own system prompt
    when it has one ("" for none), stands in for the system messages stored."""
    out = [{"role": m.role, "content": m.content} for m in branch
           if m.content and not (system is not None and m.role == "system")]
    if system:
        out.insert(0, {"role": "system", "content": system})
    return out


class Turn:
    """Iterate for engine events; ``result`` is filled when the iteration ends.
    ``cancel()`` stops the reply at the next token and keeps what was said.

    ``user`` is the user's message as stored (after the before_send filters),
    ``text`` the reply so far (it grows as the batches are iterated) and
    ``model_name`` the model's name in models/, as history records it.

    Versions: ``after`` (a message id, or ``ROOT``) makes the user's message
    follow that message instead of the chat's current one (an edit: a sibling
    of the message edited); ``reply_to`` (the id of a stored user message) asks
    for another reply to it, a sibling of the replies it has (regenerate). The
    model sees the branch that leads there, nothing from the others.
    ``continue_id`` (the id of a stored reply, one cut off at the token limit)
    asks for more of that reply: the same message grows, and ``text`` starts
    with what it already said (``user_text`` is not used).
    ``source`` is where a new chat started; ``history`` another backend (a
    throwaway one for a chat not saved)."""

    def __init__(
        self,
        app: "App",
        user_text: str,
        params: "GenParams",
        *,
        chat_id: str | None = None,
        system: str | None = None,
        model: Path | str | None = None,
        after: str | None = None,
        reply_to: str | None = None,
        continue_id: str | None = None,
        source: str | None = None,
        history: HistoryBackend | None = None,
    ) -> None:
        self.app = app
        self._history = history
        history = self.history
        self.model = model or (app.engine.loaded.path if app.engine.loaded else app.default_model())
        # One identity: two repositories may both ship x-Q4_K_M.gguf.
        self.model_name = app.model_name(self.model)
        self.text = ""
        if continue_id is not None and chat_id is None:
            raise ValueError("a reply to continue needs its chat")
        if chat_id is None:
            chat_id = history.create_chat(title=title_from(user_text), model=self.model_name,
                                          source=source, system=system)
            previous: list[ChatMessage] = []
            override = None
        else:
            chat = history.load_chat(chat_id)
            # The chat's own system prompt, edited in the popup, is what the model
            # reads from now on, whatever system message the branch stored.
            override = chat.system
            if continue_id is not None:
                previous = active_path(chat.tree, continue_id)
                if (len(previous) < 2 or previous[-1].id != continue_id
                        or previous[-1].role != "assistant"):
                    raise ValueError(f"chat '{chat_id}' has no reply '{continue_id}' to continue")
            elif reply_to is not None:
                previous = active_path(chat.tree, reply_to)
                if not previous or previous[-1].id != reply_to or previous[-1].role != "user":
                    raise ValueError(f"chat '{chat_id}' has no user message '{reply_to}'")
            elif after == ROOT:
                previous = []
            elif after is not None:
                previous = active_path(chat.tree, after)
            else:
                previous = chat.messages
        self.result = TurnResult(chat_id)
        if continue_id is not None:
            self.reply = previous.pop()
            self.user = previous[-1]
            self.text = self.reply.content
            # Streaming again: the backends append the new pieces to this message.
            self.reply.interrupted = True
            history.append_message(chat_id, self.reply)
            messages = engine_messages(previous, override)
            messages.append({"role": "assistant", "content": self.reply.content})
            self._stream = app.chat(messages, params, model=self.model, chat_id=chat_id,
                                    continue_reply=True)
            return
        if reply_to is not None:
            self.user = previous.pop()  # stored, filtered already: asked again as it was
        else:
            draft = MessageDraft(text=user_text, chat_id=chat_id, role="user", model=self.model_name)
            user_text = app.filter_message("before_send", draft)
            last = previous[-1].id if previous else ROOT
            if system and not any(m.role == "system" for m in previous):
                prompt = ChatMessage("system", system, parent=last)
                history.append_message(chat_id, prompt)
                previous.insert(0, prompt)  # the model reads it first
                last = prompt.id
            self.user = ChatMessage("user", user_text, parent=last)
            history.append_message(chat_id, self.user)
        messages = engine_messages(previous, override)
        messages.append({"role": "user", "content": self.user.content})
        self.reply = ChatMessage("assistant", "", model=self.model_name, interrupted=True,
                                 parent=self.user.id)
        # app.chat routes ENGINE:MODEL to a plugin's engine, anything else to llama.cpp.
        self._stream: ChatStream = app.chat(messages, params, model=self.model, chat_id=chat_id)

    _history: HistoryBackend | None = None

    @property
    def history(self) -> HistoryBackend:
        return self._history if self._history is not None else self.app.history

    @property
    def chat_id(self) -> str:
        return self.result.chat_id

    def cancel(self) -> None:
        self._stream.cancel()

    def __iter__(self) -> Iterator["Event"]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list["Event"]]:
        """The events in the batches the engine handed over (a UI draws per batch)."""
        from rmm_tray.engine import Done, Failed, Token

        history, chat_id, reply = self.history, self.chat_id, self.reply
        unsaved: list[str] = []
        last_save = time.monotonic()
        finished = False
        try:
            for batch in self._stream.batches():
                new: list[str] = []
                for event in batch:
                    if isinstance(event, Token):
                        new.append(event.text)
                    elif isinstance(event, Done):
                        finished = event.stop_reason != "cancelled"
                        reply.stats = event.to_dict()
                    elif isinstance(event, Failed):
                        self.result.error = event.message
                if new:
                    piece = "".join(new)
                    self.text += piece
                    unsaved.append(piece)
                yield batch
                # After the yield: what is saved has been shown.
                if unsaved and time.monotonic() - last_save >= PARTIAL_EVERY_S:
                    history.append_partial(chat_id, reply.id, "".join(unsaved))
                    unsaved.clear()
                    last_save = time.monotonic()
        finally:
            # Reached also when the consumer stops early (Ctrl+C): keep what was said.
            self._stream.cancel()
            if self.text or not self.result.error:
                self._save_reply(reply, self.text, finished)

    def _save_reply(self, reply: ChatMessage, text: str, finished: bool) -> None:
        try:
            if finished:
                draft = MessageDraft(text=text, chat_id=self.chat_id, role="assistant",
                                     model=self.model_name)
                text = self.app.filter_message("after_reply", draft)
        finally:
            # Whatever the filters did (raised, or a Ctrl+C while they ran), a reply
            # that was complete on screen is saved complete: unfiltered if need be.
            reply.content = text
            reply.interrupted = not finished
            self.history.append_message(self.chat_id, reply)
            self.result.reply = reply
