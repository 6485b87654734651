"""From a request to the engine and back: the model a request names, the queue
bound, a reply read from the event loop, and (if asked) the chat saved.

Replies come from the same engine queue as the popup's and the CLI's
(``Engine.chat``); nothing here generates text itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmm_tray.errors import RmmError
from rmm_tray.server.errors import ApiError
from rmm_tray.server.settings import RETRY_AFTER_S

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.engine import ChatStream, Done, Event, GenParams

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One reply to make: what the engine gets, and how the chat is recorded."""

    messages: list[dict[str, str]]
    params: "GenParams"
    model: Path
    model_name: str
    #: A plain completion: the text of ``messages`` is the prompt, no chat template.
    raw: bool = False


@dataclass
class Reply:
    """What a reply came to, once its events are read."""

    text: str = ""
    done: "Done | None" = None
    error: str | None = None
    pieces: list[str] = field(default_factory=list)


def model_names(core: "App") -> list[str]:
    from rmm_tray.models.store import list_models

    return [m.name for m in list_models(core.home.models) if m.error is None]


def resolve(core: "App", ref: Any) -> Path:
    """The model a request names, by the names ``-m`` takes; no name: the loaded
    model, else the default. Nothing outside models/ (a client names no paths)."""
    from rmm_tray.models.store import ModelNotFound, resolve_model

    if ref is not None and not isinstance(ref, str):
        raise ApiError(400, "model must be a string", param="model")
    try:
        if not ref:
            loaded = core.loaded
            return loaded.path if loaded is not None else core.default_model()
        path = resolve_model(ref, core.home.models)
        if Path(core.model_name(path)).is_absolute():
            raise ModelNotFound(ref)
        return path
    except ModelNotFound:
        names = model_names(core)
        have = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"
        what = f"model {ref!r} does not exist" if ref else "no model is loaded and there is no default"
        raise ApiError(404, f"{what}; this server has: {have}", param="model",
                       code="model_not_found") from None


def chat_key(messages: list[dict[str, str]]) -> str:
    """The engine's chat id for a conversation: its system text and first user
    message, so a client that resends a growing conversation keeps its KV state
    (parked in the engine's state cache while another chat runs)."""
    head = [m for m in messages if m["role"] == "system"][:1]
    head += [m for m in messages if m["role"] == "user"][:1]
    return "api-" + _digest(head)[:16]


def _digest(messages: list[dict[str, str]]) -> str:
    data = json.dumps([(m["role"], m["content"]) for m in messages], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def refuse_embedding_model(path: Path, name: str) -> None:
    """A 400 before queuing, instead of the engine's refusal as a failed reply."""
    from rmm_tray.engine.embed import file_is_encoder

    if file_is_encoder(path):
        raise ApiError(400, f"model {name!r} is an embedding model: it makes vectors "
                       "(POST /v1/embeddings), not replies; name a chat model", param="model",
                       code="model_not_chat")


class Gate:
    """The queue bound: one request generating and ``max_waiting`` waiting; one
    more is told to come back (503 with Retry-After) instead of waiting unseen."""

    def __init__(self, max_waiting: int) -> None:
        self.limit = max_waiting + 1
        self.active = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.active >= self.limit:
                raise ApiError(503, f"the engine is busy ({self.active} requests ahead); try again "
                               "shortly", code="server_busy",
                               headers={"Retry-After": str(RETRY_AFTER_S)})
            self.active += 1

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


class Generation:
    """A reply from the engine, read on the event loop. A thread waits on the
    engine's stream and hands each batch to the loop; leaving ``batches()``
    early (the client went away) cancels the reply at its next token."""

    def __init__(self, core: "App", job: Job, gate: Gate, recorder: "ChatRecorder | None",
                 finished: "deque[dict[str, Any]] | None" = None) -> None:
        self.job = job
        #: What the engine reported at the end of each reply (the /health endpoint shows them).
        self._finished = finished
        self.reply = Reply()
        self._recorder = recorder
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        refuse_embedding_model(job.model, job.model_name)
        gate.enter()
        self._gate = gate
        try:
            key = "api-raw" if job.raw else chat_key(job.messages)
            # No warm-up of a next turn: a program may send its next request at
            # once (another conversation, often), and it would wait behind it.
            self.stream: ChatStream = core.engine.chat(job.messages, job.params, model=job.model,
                                                       chat_id=key, raw=job.raw, warm_next_turn=False)
        except BaseException:
            gate.leave()
            raise
        threading.Thread(target=self._pump, name="rmm-api-reply", daemon=True).start()

    def _pump(self) -> None:
        from rmm_tray.engine import Done

        try:
            for batch in self.stream.batches():
                self._hand(batch)
                if self._finished is not None:
                    self._finished.extend(e.to_dict() for e in batch if isinstance(e, Done))
        except BaseException:  # noqa: BLE001  (a thread must say it ended, whatever happened)
            log.exception("reading a reply failed")
        finally:
            # The engine is done with this request (or skipped it): its place is free.
            self._gate.leave()
            self._hand(None)

    def _hand(self, item: "list[Event] | None") -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody reads this reply any more
            self.stream.cancel()

    async def batches(self) -> AsyncIterator[list["Event"]]:
        from rmm_tray.engine import Done, Failed, Token

        reply = self.reply
        finished = False
        try:
            while True:
                batch = await self._events.get()
                if batch is None:
                    finished = True
                    return
                for event in batch:
                    if isinstance(event, Token):
                        reply.pieces.append(event.text)
                    elif isinstance(event, Done):
                        reply.done = event
                    elif isinstance(event, Failed):
                        reply.error = event.message
                yield batch
        finally:
            if not finished:
                self.stream.cancel()
            reply.text = "".join(reply.pieces)
            if self._recorder is not None and (reply.text or reply.error is None):
                interrupted = reply.done is None or reply.done.stop_reason == "cancelled"
                self._recorder.record_later(self.job, reply.text, reply.done, interrupted)

    async def collect(self) -> Reply:
        async for _ in self.batches():
            pass
        return self.reply


class ChatRecorder:
    """Saves API chats to history (``[server] save_chats``), source "api". A client
    resends the whole conversation each turn: a request whose earlier messages are
    a conversation recorded before continues that chat instead of starting one."""

    KEEP = 512

    def __init__(self, core: "App") -> None:
        self.core = core
        self._chats: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def record_later(self, job: Job, text: str, done: "Done | None", interrupted: bool) -> None:
        # History writes fsync: not on the event loop.
        threading.Thread(target=self._record_safely, args=(job, text, done, interrupted),
                         name="rmm-api-history", daemon=True).start()

    def _record_safely(self, job: Job, text: str, done: "Done | None", interrupted: bool) -> None:
        try:
            self.record(job, text, done, interrupted)
        except RmmError as exc:
            log.warning("could not save an API chat: %s", exc)
        except Exception:
            log.exception("could not save an API chat")

    def record(self, job: Job, text: str, done: "Done | None", interrupted: bool) -> str:
        from rmm_tray.chat.history import ChatMessage, title_from

        history = self.core.history
        messages = [m for m in job.messages if m["content"]]
        if not messages:
            raise RmmError("nothing to save")
        with self._lock:
            chat_id = self._chats.pop(_digest(messages[:-1]), None) if len(messages) > 1 else None
            if chat_id is None:
                first = next((m for m in messages if m["role"] == "user"), messages[0])
                chat_id = history.create_chat(title=title_from(first["content"]), model=job.model_name,
                                              source="api")
                earlier = messages[:-1]
            else:
                earlier = []
            for m in [*earlier, messages[-1]]:
                history.append_message(chat_id, ChatMessage(m["role"], m["content"]))
            history.append_message(chat_id, ChatMessage(
                "assistant", text, model=job.model_name, interrupted=interrupted,
                stats=done.to_dict() if done is not None else None))
            self._chats[_digest([*messages, {"role": "assistant", "content": text}])] = chat_id
            while len(self._chats) > self.KEEP:
                self._chats.popitem(last=False)
        return chat_id
