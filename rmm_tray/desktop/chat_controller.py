"""What the popup can ask of the app, done in the core process.

The popup is only a view: each call here returns at once, the work runs on a
worker thread, and what the page should show is sent back as events through
``emit``. No GUI toolkit is imported here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.chat.history import ROOT, Chat, ChatMessage, newest_leaf, recent_chats, versions
from rmm_tray.desktop.render import StreamRenderer, render_markdown
from rmm_tray.desktop.work import Background
from rmm_tray.errors import describe
from rmm_tray.models.store import ModelNotFound, exact_model, list_models

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.chat.turn import Turn

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]

NO_MODEL = "No model yet: get one from the Hub, or import a GGUF file you already have."


def message_event(m: ChatMessage) -> dict[str, Any]:
    """A whole message as the page shows it (a reply as Markdown rendered whole)."""
    out: dict[str, Any] = {"id": m.id, "role": m.role, "text": m.content,
                           "interrupted": m.interrupted, "streaming": False}
    if m.role == "assistant":
        out["html"] = render_markdown(m.content)
    if m.stats:
        out["stats"] = m.stats
    return out


def versions_of(chat: Chat, m: ChatMessage) -> dict[str, Any] | None:
    """Where a message stands among its versions, for the page's ‹ n/N ›: None
    when it has none."""
    siblings = versions(chat, m.id)
    if len(siblings) < 2:
        return None
    i = [s.id for s in siblings].index(m.id)
    return {"index": i + 1, "count": len(siblings),
            "prev": siblings[i - 1].id if i > 0 else None,
            "next": siblings[i + 1].id if i + 1 < len(siblings) else None}


def chat_events(chat: Chat) -> list[dict[str, Any]]:
    """The branch shown, as the page shows it, each message with its versions."""
    out = []
    for m in chat.messages:
        if m.role == "system":
            continue
        event = message_event(m)
        where = versions_of(chat, m)
        if where:
            event["versions"] = where
        out.append(event)
    return out


def chat_system(chat: Chat) -> str:
    """The system prompt the chat's next turn uses: its own field, else the first
    system message of the branch shown (chats stored before the field was kept)."""
    if chat.system is not None:
        return chat.system
    return next((m.content for m in chat.messages if m.role == "system"), "")


def streaming_event(reply_id: str, blocks: str, tail: str, tokens: int = 0) -> dict[str, Any]:
    """A batch of a streaming reply: the HTML of the Markdown blocks completed
    since the last batch (the page appends it) and of the unfinished tail (it
    replaces the last tail). The final message event carries the whole.
    ``tokens`` (generated so far) lets the page time the stream as it arrives."""
    return {"id": reply_id, "role": "assistant", "streaming": True, "interrupted": False,
            "append_html": blocks, "tail_html": tail, "tokens": tokens}


class ChatController:
    #: The page is drawn at most this often while a reply streams (the first
    #: batch at once). Each draw is markdown here and a re-layout in WebKit, on the
    #: cores llama.cpp decodes on: ~10 draws a second read as smoothly as the
    #: ~25 batches a fast model hands over, and leave it its CPU.
    PAINT_S = 0.1

    def __init__(self, app: "App", emit: Emit, on_state: Callable[[], None] | None = None,
                 work: Background | None = None) -> None:
        self.app = app
        self.work = work or Background()
        self.emit = emit
        self.on_state = on_state or (lambda: None)
        self.chat_id: str | None = None
        #: The system prompt typed for a chat not started yet: its first turn uses it.
        self.new_system: str | None = None
        self.model: Path | None = None
        #: A plugin engine's model (ENGINE:MODEL) chosen in the picker or the tray:
        #: the next replies come from it; None for the local model.
        self.remote: str | None = None
        #: The engines' models as last asked (asking is a network round trip).
        self._remote_names: list[str] = []
        self._turn: Turn | None = None
        # Held only while a turn is set up; a turn waits here for the one before to end.
        self._idle = threading.Condition()
        self.last_error: str | None = None
        app.model_listeners.append(self._model_changed)

    def _model_changed(self, loaded: Any) -> None:
        # On the engine thread: a load the API or the CLI asked for shows in the
        # picker and the tray too. Sent from a worker, so the engine never waits on IPC.
        self._spawn("model changed", self.push_state)

    # -- state ---------------------------------------------------------------

    def models(self) -> list[str]:
        local = [m.name for m in list_models(self.app.home.models, read_metadata=False)]
        return local + [n for n in self._remote_names if n not in local]

    def refresh_engines(self) -> None:
        """Ask the plugins' engines for their models again (in the background: a
        slow server must not hold up the popup), then show the new list."""
        if self.app.engines or self._remote_names:  # the last server removed: its models go
            self._spawn("engine models", self._refresh_engines)

    def _refresh_engines(self) -> None:
        from rmm_tray.hooks.engines import engine_models

        listed = engine_models(self.app.engines)
        names = [n for e in listed for n in e.models]
        if names != self._remote_names:
            self._remote_names = names
            self.push_state()

    def current_model(self) -> Path | str | None:
        if self.remote is not None:
            return self.remote
        if self.app.loaded is not None:
            return self.app.loaded.path
        if self.model is not None:
            return self.model
        try:
            return self.app.default_model()
        except ModelNotFound:
            return None

    def status(self) -> str:
        """What the popup, the tray icon and ``rmm-tray status`` all show: the
        engine's state, or "error" while the engine is idle after a failure. A
        failure (a load, a reply) stays shown until the next action succeeds or
        starts: a load, a message, an unload."""
        state = self.app.engine_status().state
        if state == "idle" and self._turn is not None:
            return "generating"  # queued for the engine, about to start
        if state == "idle" and self.last_error:
            return "error"
        return state

    def state_event(self) -> dict[str, Any]:
        model = self.current_model()
        name = self.app.model_name(model) if model is not None else None
        return {"type": "state", "models": self.models(), "model": name, "status": self.status(),
                "error": self.last_error,
                "engines": sorted(self.app.engines) if self._remote_names else []}

    def push_state(self) -> None:
        self.emit(self.state_event())
        self.on_state()

    def refresh_state(self) -> None:
        """The page asks again (on show): the models folder may have changed
        behind the app's back (the CLI, a file manager), a server its models."""
        self.emit(self.state_event())
        self.refresh_engines()

    # -- actions (any thread; never block) --------------------------------------

    def _spawn(self, name: str, fn: Callable[..., None], *args: Any) -> "Future[Any]":
        return self.work.run(name, fn, *args, on_error=self._failed)

    def _failed(self, line: str) -> None:
        self.last_error = line
        self.emit({"type": "error", "message": line})
        self.push_state()

    def send(self, text: str) -> "Future[Any]":
        return self._spawn("send", self._run_turn, text)

    def send_in(self, chat_id: str, text: str) -> None:
        """Send ``text`` as the next message of ``chat_id`` (a chat a prompt has
        just started), on the calling worker thread."""
        self.chat_id = chat_id
        self._run_turn(text)

    def stop(self) -> None:
        turn = self._turn
        if turn is not None:
            turn.cancel()

    def regenerate(self) -> "Future[Any]":
        """Another reply to the last question; the earlier ones stay as versions."""
        return self._spawn("regenerate", self._redo, None, None)

    def continue_reply(self, message_id: str) -> "Future[Any]":
        """More of the last reply, cut off at the token limit: the same message grows."""
        return self._spawn("continue", self._run_turn, None, False, None, message_id)

    def edit_last(self, text: str) -> "Future[Any]":
        return self._spawn("edit", self._redo, "", text)

    def edit_message(self, message_id: str, text: str) -> "Future[Any]":
        """Send ``text`` in place of a question of the branch shown: a new branch;
        the old question and what followed it stay, one ‹ › away."""
        return self._spawn("edit", self._redo, message_id, text)

    def choose_version(self, message_id: str) -> None:
        """Show another version of a message, and the conversation that went on from it."""
        if self.chat_id is None or self._turn is not None:
            return
        chat = self.app.history.load_chat(self.chat_id)
        if message_id not in {m.id for m in chat.tree}:
            return  # a stale button: the page is redrawn as the chat is
        self.app.history.update_chat(self.chat_id, current=newest_leaf(chat, message_id))
        self._show_chat(self.chat_id, keep_focus=True)

    def set_system(self, text: str) -> None:
        """The chat's system prompt, as edited in its header: stored with the chat
        (its ``system`` field, which the next turn reads; "" for none), or kept
        for the first turn of a chat not started yet."""
        text = text.strip()
        if self.chat_id is None:
            self.new_system = text or None
        else:
            self.app.history.update_chat(self.chat_id, system=text)
        self.emit({"type": "chat_system", "chat_id": self.chat_id, "text": text})

    def new_chat(self) -> None:
        self.stop()
        self.chat_id = None
        self.new_system = None
        self.emit({"type": "chat_system", "chat_id": None, "text": ""})
        self.emit({"type": "chat", "chat_id": None, "messages": []})
        self.emit({"type": "focus"})

    def open_chat(self, chat_id: str) -> None:
        chat = self._show_chat(chat_id)
        # A chat remembers its model: reopened, it goes on with that one if it is still here.
        current = self.current_model()
        if chat.model and chat.model in self.models() and \
                (current is None or self.app.model_name(current) != chat.model):
            self.set_model(chat.model)

    def _show_chat(self, chat_id: str, keep_focus: bool = False) -> Chat:
        chat = self.app.history.load_chat(chat_id)
        self.chat_id = chat.id
        self.emit({"type": "chat_system", "chat_id": chat.id, "text": chat_system(chat)})
        self.emit({"type": "chat", "chat_id": chat.id, "messages": chat_events(chat),
                   "keep_focus": keep_focus})
        return chat

    def list_chats(self) -> list[dict[str, Any]]:
        items = [{"id": c.id, "title": c.title} for c in recent_chats(self.app.history, 30)]
        self.emit({"type": "chats", "items": items})
        return items

    def set_model(self, name: str) -> "Future[Any]":
        return self._spawn("load", self._load, name)

    def unload(self) -> None:
        self.app.engine.unload().result()
        self.last_error = None  # an unload that worked is the next successful action
        self.push_state()

    # -- work ------------------------------------------------------------------

    def _load(self, name: str) -> None:
        from rmm_tray.hooks.engines import split_name

        parts = split_name(name)
        if parts is not None and parts[0] in self.app.engines:
            # Nothing to load: the next replies stream from that server.
            self.remote, self.last_error = name, None
            self.push_state()
            return
        # Only a model named as the list names it: the page (or a peer on the IPC
        # socket) must not make the engine open an arbitrary path.
        path = exact_model(name, self.app.home.models)
        self.remote = None
        self.model = path
        self.last_error = None
        future = self.app.engine.load(path)
        self.push_state()  # shows "loading"
        try:
            future.result()
        except Exception as exc:
            self.last_error = describe(exc)
            self.emit({"type": "error", "message": self.last_error})
        finally:
            self.push_state()

    def _redo(self, edit_id: str | None, new_text: str | None) -> None:
        self._run_turn(new_text, redo=True, edit_id=edit_id)

    def _start_turn(self, text: str | None, redo: bool, edit_id: str | None = None,
                    continue_id: str | None = None) -> "Turn | None":
        """Under the lock, after any turn still running has ended: for a redo,
        take the replaced messages off the page (history keeps them as versions);
        store the user's message, queue the reply. ``edit_id`` "" is the last question."""
        from rmm_tray.chat.turn import Turn

        with self._idle:
            self._idle.wait_for(lambda: self._turn is None)
            if self.current_model() is None:
                self._no_model(text)
                return None
            if redo:
                if self.chat_id is None:
                    return None
                chat = self.app.history.load_chat(self.chat_id)
                users = [m for m in chat.messages if m.role == "user"]
                target = next((m for m in users if m.id == edit_id), None) if edit_id else \
                    (users[-1] if users else None)
                if target is None:
                    return None
                start = chat.messages.index(target) + (1 if edit_id is None else 0)
                for m in chat.messages[start:]:
                    self.emit({"type": "remove", "id": m.id})
            if continue_id is not None:
                if self.chat_id is None:
                    return None
                shown = self.app.history.load_chat(self.chat_id).messages
                if not shown or shown[-1].id != continue_id or shown[-1].role != "assistant":
                    self._show_chat(self.chat_id, keep_focus=True)  # a stale button: redraw
                    return None  # only the last reply goes on
                # The reply streams again from its start, so it is drawn anew.
                self.emit({"type": "remove", "id": continue_id})
            model = self.current_model()
            params = self.app.gen_params(model)  # the model's own sampling defaults, if it has any
            self.last_error = None
            if continue_id is not None:
                turn = Turn(self.app, "", params, chat_id=self.chat_id, model=model,
                            continue_id=continue_id)
            elif redo and edit_id is None:
                turn = Turn(self.app, "", params, chat_id=self.chat_id, model=model,
                            reply_to=target.id)
            elif redo:
                assert text is not None
                turn = Turn(self.app, text, params, chat_id=self.chat_id, model=model,
                            after=target.parent or ROOT)
            else:
                assert text is not None
                turn = Turn(self.app, text, params, chat_id=self.chat_id, model=model,
                            source="popup", system=self.new_system if self.chat_id is None else None)
                self.new_system = None
            self._turn = turn
            self.chat_id = turn.chat_id
            return turn

    def _no_model(self, text: str | None) -> None:
        """Nothing to answer with: say so with what the person can do about it, in
        the popup (not a CLI command), and hand the text back for the input. Not
        an error state: the tray stays as it is and the label says "no model"."""
        self.emit({"type": "error", "message": NO_MODEL, "actions": ["get_model", "import_file"],
                   "text": text})

    def _run_turn(self, text: str | None, redo: bool = False, edit_id: str | None = None,
                  continue_id: str | None = None) -> None:
        from rmm_tray.engine import Done, Failed, Token

        turn = self._start_turn(text, redo, edit_id, continue_id)
        if turn is None:
            return
        try:
            self.emit({"type": "message", "chat_id": turn.chat_id,
                       "message": self._versioned(turn.chat_id, turn.user)})
            self.push_state()
            reply_id = turn.reply.id
            stream = StreamRenderer()
            shown = tokens = 0
            for batch in turn.batches():
                for event in batch:
                    if isinstance(event, Token):
                        tokens += 1
                    elif isinstance(event, Failed):
                        self.last_error = event.message
                        self.emit({"type": "error", "message": event.message})
                # The last batch's text comes with the final message.
                if len(turn.text) > shown and not any(isinstance(e, Done) for e in batch):
                    shown = len(turn.text)
                    blocks, tail = stream.update(turn.text)
                    self.emit({"type": "message", "chat_id": turn.chat_id,
                               "message": streaming_event(reply_id, blocks, tail, tokens)})
                    # The tokens of the next PAINT_S gather in the stream meanwhile;
                    # Stop cancels the engine from another thread, not through here.
                    time.sleep(self.PAINT_S)
        finally:
            with self._idle:
                self._turn = None
                self._idle.notify_all()
        if turn.result.reply is not None:
            self.emit({"type": "message", "chat_id": turn.chat_id,
                       "message": self._versioned(turn.chat_id, turn.result.reply)})
        self.push_state()

    def _versioned(self, chat_id: str, m: ChatMessage) -> dict[str, Any]:
        event = message_event(m)
        where = versions_of(self.app.history.load_chat(chat_id), m)
        if where:
            event["versions"] = where
        return event
