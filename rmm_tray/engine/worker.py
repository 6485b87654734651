"""The engine: one thread owns the llama_cpp.Llama; everything else sends it work.

llama_cpp.Llama is not thread-safe. Callers (CLI, tray, popup bridge) get a
Future or a ChatStream back at once and never touch the model themselves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmm_tray.engine import llama_log, state_cache
from rmm_tray.engine.chat_format import ChatFormat, choose_format, raw_format
from rmm_tray.engine.embed import Embeddings, embed_items, file_is_encoder, is_encoder
from rmm_tray.engine.generation import run_turn, warm_next_turn
from rmm_tray.engine.loader import OpenedModel, check_model_file, gpu_layers_for, open_model
from rmm_tray.engine.types import (
    Done,
    EngineError,
    EngineSettings,
    EngineStatus,
    Event,
    EventStream,
    Failed,
    GenParams,
    LoadedModel,
    Token,
)
from rmm_tray.models.gguf import GGUFInfo

log = logging.getLogger(__name__)

class ChatStream(EventStream):
    """The events of one reply, as they come. Iterate it; ``cancel()`` from any thread.

    Tokens are handed over in small batches: the reader is woken at most every
    ``BATCH_S`` while tokens flow (and at once for the first token, the end, or a
    slow model), so a fast model does not spend its CPU waking the UI thread.
    """

    BATCH_S = 0.03

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: list[Any] = []
        self._closed = False
        self._last_wake = 0.0
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _put(self, event: Any) -> None:
        with self._cond:
            self._pending.append(event)
            now = time.monotonic()
            if not isinstance(event, Token) or now - self._last_wake >= self.BATCH_S:
                self._last_wake = now
                self._cond.notify_all()

    def _close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def batches(self) -> Iterator[list[Event]]:
        """The events in the batches they arrived in (for UIs that draw per batch)."""
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                batch, self._pending = self._pending, []
            if not batch:
                return
            yield batch


@dataclass
class _Chat:
    messages: list[dict[str, Any]]
    params: GenParams
    model: Path | None
    chat_id: str | None
    raw: bool = False
    continue_reply: bool = False
    warm: bool = True
    stream: ChatStream = field(default_factory=ChatStream)


@dataclass
class _Call:
    name: str
    args: tuple[Any, ...]
    future: Future[Any] = field(default_factory=Future)


class Engine:
    def __init__(
        self,
        settings: EngineSettings | None = None,
        default_model: Path | None = None,
        *,
        settings_for: Callable[[Path], EngineSettings] | None = None,
        name_for: Callable[[Path], str] | None = None,
        on_model: Callable[[LoadedModel | None], None] | None = None,
    ):
        self.settings = settings or EngineSettings()
        self.default_model = default_model
        #: A model's own settings (per-model context, GPU layers, template); asked
        #: on the engine thread each time a model is to be used, so a change
        #: reloads the model on its next use.
        self.settings_for = settings_for
        #: How the app names a model (its path in models/), for the events it sends.
        self.name_for = name_for or (lambda path: path.name)
        #: Told on the engine thread when a model starts loading (None), is loaded,
        #: or is unloaded (None): whoever asked for it (the popup, the API, the
        #: CLI), every view shows the model in use.
        self.on_model = on_model
        self._loaded_settings: EngineSettings | None = None
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._state = "idle"
        self._error: str | None = None
        self._model: OpenedModel | None = None
        self._format: ChatFormat | None = None
        self._bos = ""
        self._loaded: LoadedModel | None = None
        self._states = state_cache.StateCache(self.settings.state_cache_bytes)
        self._current_chat: str | None = None
        #: How many times a model was opened: the popup's restarts must not add to it.
        self.loads = 0
        llama_log.install()
        self._thread = threading.Thread(target=self._run, name="rmm-engine", daemon=True)
        self._thread.start()

    # -- public, callable from any thread ------------------------------------

    def load(self, path: Path) -> Future[LoadedModel]:
        return self._call("load", Path(path))

    def unload(self) -> Future[None]:
        return self._call("unload")

    def chat(
        self,
        messages: list[dict[str, Any]],
        params: GenParams | None = None,
        *,
        model: Path | None = None,
        chat_id: str | None = None,
        raw: bool = False,
        continue_reply: bool = False,
        warm_next_turn: bool = True,
    ) -> ChatStream:
        """A reply to ``messages``; ``raw``: no chat template, the messages' text
        is the prompt as given (a plain completion); ``continue_reply``: more of
        the reply that ends ``messages`` (one cut off at the token limit);
        ``warm_next_turn``: decode the next turn's opening after the reply, for a
        person who reads before asking again (not for a program that asks at once:
        its next request would wait for it)."""
        job = _Chat(list(messages), params or GenParams(), model, chat_id, raw, continue_reply,
                    warm_next_turn)
        self._jobs.put(job)
        return job.stream

    def embed(self, items: list[str | list[int]], *, model: Path | None = None) -> Future[Embeddings]:
        """One unit-length vector per item (a text, or token ids as the model reads
        them) from an embedding model, loading it first if need be."""
        return self._call("embed", list(items), model)

    def status(self) -> EngineStatus:
        path = self._loaded.path if self._loaded else None
        return EngineStatus(self._state, path, self._error)

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def close(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout)

    # -- engine thread -------------------------------------------------------

    def _call(self, name: str, *args: Any) -> Future[Any]:
        call = _Call(name, args)
        self._jobs.put(call)
        return call.future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._unload()
                return
            try:
                if isinstance(job, _Chat):
                    self._serve_chat(job)
                else:
                    self._serve_call(job)
            except BaseException as exc:  # the engine thread must outlive any request
                log.exception("engine request failed")
                if isinstance(job, _Chat):
                    job.stream._put(Failed(f"internal error: {exc}"))
                    job.stream._close()
                elif not job.future.done():
                    job.future.set_exception(EngineError(f"internal error: {exc}"))
            finally:
                self._state = "idle"

    def _serve_call(self, call: _Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            result = getattr(self, "_" + call.name)(*call.args)
        except EngineError as exc:
            call.future.set_exception(exc)
        else:
            call.future.set_result(result)

    def _settings(self, path: Path) -> EngineSettings:
        return self.settings_for(path) if self.settings_for is not None else self.settings

    def _load(self, path: Path) -> LoadedModel:
        settings = self._settings(path)
        if self._loaded and self._loaded.path == path and settings == self._loaded_settings:
            return self._loaded
        previous = (self._loaded.path, self._loaded_settings) if self._loaded else None
        try:
            # Reject what we can before giving up the model in use.
            info = check_model_file(path, gpu_layers=gpu_layers_for(settings))
        except EngineError as exc:
            self._error = str(exc)
            raise
        self._unload()  # free the old model's memory before the new one arrives
        try:
            return self._open(path, settings, info)
        except EngineError as exc:
            self._error = str(exc)
            if previous is not None:
                self._state = "loading"
                try:
                    self._open(previous[0], previous[1] or settings)
                except EngineError:
                    log.warning("could not reload %s after a failed switch", previous[0].name)
            self._error = str(exc)
            raise

    def _tell(self, loaded: LoadedModel | None) -> None:
        if self.on_model is not None:
            try:
                self.on_model(loaded)
            except Exception:  # a listener's failure is not the engine's
                log.exception("a model-change listener failed")

    def _open(self, path: Path, settings: EngineSettings, info: GGUFInfo | None = None) -> LoadedModel:
        self._state = "loading"
        self._error = None
        self._tell(None)
        opened = open_model(path, settings, info)
        self.loads += 1
        llama = opened.llama
        fmt: ChatFormat | None = None
        bos = ""
        try:
            if not is_encoder(opened.info):  # an encoder has no chat template to find
                bos = _token_text(llama, llama.token_bos())
                eos = _token_text(llama, llama.token_eos())
                fmt = choose_format(
                    gguf_template=opened.info.chat_template,
                    architecture=opened.info.architecture,
                    override=settings.chat_template,
                    bos=bos,
                    eos=eos,
                )
        except EngineError:
            llama.close()
            raise
        self._model, self._format, self._bos = opened, fmt, bos
        self._loaded_settings = settings
        self._loaded = LoadedModel(
            path=path,
            name=self.name_for(path),
            architecture=opened.info.architecture,
            n_ctx=opened.n_ctx,
            n_ctx_train=opened.info.context_length or opened.n_ctx,
            gpu_layers=opened.gpu_layers,
            threads=opened.threads,
            chat_template=fmt.name if fmt is not None else "none",
            load_s=opened.load_s,
        )
        log.info("loaded %s in %.2fs (ctx %d, gpu layers %d, template %s)", path.name,
                 opened.load_s, opened.n_ctx, opened.gpu_layers, self._loaded.chat_template)
        self._tell(self._loaded)
        return self._loaded

    def _unload(self) -> None:
        self._states.clear()
        self._current_chat = None
        had = self._model is not None
        if self._model is not None:
            self._model.llama.close()
        self._model = self._format = None
        self._loaded = self._loaded_settings = None
        if had:
            self._tell(None)

    def _serve_chat(self, job: _Chat) -> None:
        stream = job.stream
        try:
            if stream.cancelled:
                return
            target = job.model or (self._loaded.path if self._loaded else self.default_model)
            if target is None:
                raise EngineError("no model chosen and no default model")
            if self._encoder(Path(target)):  # before the model in use is given up
                raise EngineError(f"{self.name_for(Path(target))} is an embedding model: it makes "
                                  "vectors (POST /v1/embeddings), not replies; choose a chat model")
            self._load(Path(target))
            assert self._model is not None and self._format is not None
            self._switch_chat(job.chat_id)
            self._state = "generating"
            fmt = raw_format(self._format) if job.raw else self._format
            reply: list[str] = []
            finished = False
            for event in run_turn(
                self._model.llama, fmt, job.messages, job.params, stream._cancel,
                model_name=self._loaded.name if self._loaded else "", bos_text=self._bos,
                continue_reply=job.continue_reply,
            ):
                stream._put(event)
                if isinstance(event, Token):
                    reply.append(event.text)
                elif isinstance(event, Done):
                    finished = event.stop_reason != "cancelled"
        except EngineError as exc:
            stream._put(Failed(str(exc)))
            return
        finally:
            stream._close()
        if finished and job.chat_id is not None and job.warm and self._jobs.empty():
            self._state = "idle"  # the reply is over, whatever is decoded now
            before, said = job.messages, ""
            if job.continue_reply:  # the whole reply is what the next turn follows
                before, said = job.messages[:-1], str(job.messages[-1].get("content") or "")
            self._warm(fmt, before, said + "".join(reply))

    def _encoder(self, path: Path) -> bool | None:
        """Whether ``path`` is an embedding model, from the open model's header when
        it is the one loaded (a chat turn should not re-read a file)."""
        if self._loaded is not None and self._model is not None and self._loaded.path == path:
            return is_encoder(self._model.info)
        return file_is_encoder(path)

    def _embed(self, items: list[str | list[int]], model: Path | None) -> Embeddings:
        target = model or (self._loaded.path if self._loaded else self.default_model)
        if target is None:
            raise EngineError("no model chosen and no default model")
        name = self.name_for(Path(target))
        if self._encoder(Path(target)) is False:  # before the model in use is given up
            raise EngineError(f"{name} cannot make embeddings: it is a text-generation model")
        self._load(Path(target))
        assert self._model is not None
        self._state = "generating"
        return embed_items(self._model.llama, items, name)

    def _warm(self, fmt: ChatFormat, messages: list[dict[str, Any]], reply: str) -> None:
        """After the stream has closed: the next turn's opening, decoded while the
        person reads (see generation.warm_next_turn). Costs nothing they wait for."""
        assert self._model is not None
        try:
            warm_next_turn(self._model.llama, fmt, messages, reply, bos_text=self._bos)
        except EngineError as exc:
            log.debug("no warm-up of the next turn: %s", exc)

    def _switch_chat(self, chat_id: str | None) -> None:
        """Park the context's current chat in the state cache and bring back the
        one asked for, if it was parked."""
        if chat_id == self._current_chat or chat_id is None:
            return
        llama = self._model.llama if self._model else None
        if llama is None:
            return
        if self._current_chat is not None:
            saved = state_cache.save(llama)
            if saved is not None:
                self._states.put(self._current_chat, saved)
        parked = self._states.pop(chat_id)
        if parked is not None and not state_cache.restore(llama, parked):
            log.warning("could not restore the state of chat %s; it will be re-read", chat_id)
        self._current_chat = chat_id


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return llama.detokenize([token], special=True).decode("utf-8", errors="replace")


