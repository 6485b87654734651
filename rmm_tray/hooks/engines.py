"""Chat engines that plugins offer beside the built-in llama.cpp one.

A plugin's engine only lists its models and yields the reply's text as it
comes; the core turns that into the events the local engine yields (``Token``,
``Done`` with the speeds measured here, ``Failed``), so the chat path, the
history and the UIs cannot tell the two apart. The plugin's generator runs on a
thread of its own: a read that blocks never holds up Stop, and a plugin that
raises ends its reply with one line, not the app.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rmm_tray.engine.types import Done, EngineError, EventStream, Failed, Token
from rmm_tray.errors import describe

if TYPE_CHECKING:
    from rmm_tray.engine.types import Event, GenParams

log = logging.getLogger(__name__)

#: Separates an engine's name from its model's in the name a person picks:
#: ``gpu-box:llama-3.1-70b``. Local model names never hold it (they are paths).
SEPARATOR = ":"


@dataclass(frozen=True)
class EngineUsage:
    """Token counts the server reported for a reply; yield it once, at the end
    (without it the core counts the text pieces)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    #: "length" when the reply was cut off at max_tokens; "" or "stop" otherwise.
    stop_reason: str = ""


class ChatEngine(ABC):
    """A source of replies: ``name`` (no ``:``) prefixes its models' names."""

    name: str = ""
    #: Shown above its models in the tray's and the popup's model lists.
    label: str = ""

    @abstractmethod
    def models(self) -> list[str]:
        """The model ids it serves. Raise ``EngineError`` (one line) when it cannot tell."""

    @abstractmethod
    def stream(self, messages: Sequence[dict[str, str]], params: "GenParams", *, model: str,
               cancelled: threading.Event) -> Iterator[str | EngineUsage]:
        """Yield the reply's text pieces as they arrive, then optionally an
        ``EngineUsage``. Stop early once ``cancelled`` is set (the core closes
        the generator at the next piece). Raise ``EngineError`` on failure: the
        text yielded so far is kept, marked interrupted."""


def split_name(name: str) -> tuple[str, str] | None:
    """("engine", "model") for a name of the form ENGINE:MODEL, else None."""
    engine, sep, model = name.partition(SEPARATOR)
    return (engine, model) if sep and engine and model and "/" not in engine else None


class EngineStream(EventStream):
    """One reply from a plugin's engine, with the local engine's ChatStream's
    shape: iterate it (or its ``batches()``); ``cancel()`` from any thread."""

    def __init__(self, engine: ChatEngine, messages: Sequence[dict[str, str]], params: "GenParams",
                 model: str) -> None:
        self.full_name = f"{engine.name}{SEPARATOR}{model}"
        self._cond = threading.Condition()
        self._pending: list[Event] = []
        self._closed = False
        self._cancel = threading.Event()
        threading.Thread(target=self._run, args=(engine, list(messages), params, model),
                         name=f"rmm-engine-{engine.name}", daemon=True).start()

    def cancel(self) -> None:
        self._cancel.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _put(self, event: "Event") -> None:
        with self._cond:
            self._pending.append(event)
            self._cond.notify_all()

    def _run(self, engine: ChatEngine, messages: list[dict[str, str]], params: "GenParams",
             model: str) -> None:
        start = time.monotonic()
        first = 0.0
        pieces = 0
        usage: EngineUsage | None = None
        gen: Any = None
        try:
            gen = engine.stream(messages, params, model=model, cancelled=self._cancel)
            for item in gen:
                if self._cancel.is_set():
                    break
                if isinstance(item, EngineUsage):
                    usage = item
                elif isinstance(item, str) and item:
                    if not first:
                        first = time.monotonic()
                    pieces += 1
                    self._put(Token(item))
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is its reply's, not the app's
            message = str(exc) if isinstance(exc, EngineError) else describe(exc)
            log.info("engine %s: %s", engine.name, message)  # the edge shows it
            self._put(Failed(message))
            self._finish()
            return
        finally:
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()  # closes the plugin's connection (its finally/with blocks)
                except Exception:  # noqa: BLE001
                    log.debug("closing engine %s's stream failed", engine.name, exc_info=True)
        end = time.monotonic()
        completion = usage.completion_tokens if usage and usage.completion_tokens else pieces
        prompt = usage.prompt_tokens if usage else 0
        ttft = (first or end) - start
        decode_s = end - first if first else 0.0
        self._put(Done(
            model=self.full_name, prompt_tokens=prompt,
            cached_tokens=usage.cached_tokens if usage else 0, completion_tokens=completion,
            ttft_s=ttft, prompt_tok_s=prompt / ttft if prompt and ttft > 0 else 0.0,
            decode_tok_s=(completion - 1) / decode_s if completion > 1 and decode_s > 0 else 0.0,
            stop_reason="cancelled" if self._cancel.is_set()
            else "length" if usage and usage.stop_reason == "length" else "stop",
        ))
        self._finish()

    def _finish(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def batches(self) -> Iterator[list["Event"]]:
        while True:
            with self._cond:
                while not self._pending and not self._closed and not self._cancel.is_set():
                    self._cond.wait()
                batch, self._pending = self._pending, []
                cancelled_early = not batch and not self._closed
            if cancelled_early:
                # Stop answers at once, even while the server is silent; the
                # thread closes the connection when its read returns.
                yield [Done(model=self.full_name, prompt_tokens=0, cached_tokens=0,
                            completion_tokens=0, ttft_s=0.0, prompt_tok_s=0.0, decode_tok_s=0.0,
                            stop_reason="cancelled")]
                return
            if not batch:
                return
            yield batch


@dataclass
class EngineModels:
    """One engine's models as the lists show them, or why it has none to show."""

    engine: str
    label: str
    #: Full names, ENGINE:MODEL.
    models: list[str]
    error: str | None = None


def engine_models(engines: dict[str, ChatEngine], timeout_s: float = 15.0) -> list[EngineModels]:
    """Ask every engine for its models at once: a slow server holds up only its
    own line, never for longer than ``timeout_s``. Shared by `models list --all`,
    `remote list`, the tray's menu and the popup's picker."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    if not engines:
        return []
    pool = ThreadPoolExecutor(max_workers=min(8, len(engines)), thread_name_prefix="rmm-engine-models")
    futures = {name: pool.submit(engine.models) for name, engine in engines.items()}
    out = []
    for name, future in futures.items():
        engine = engines[name]
        label = engine.label or name
        try:
            ids = future.result(timeout=timeout_s)
            out.append(EngineModels(name, label, [f"{name}{SEPARATOR}{m}" for m in ids]))
        except FutureTimeout:
            out.append(EngineModels(name, label, [], f"{name}: no answer in {timeout_s:g} s"))
        except Exception as exc:  # noqa: BLE001 - one engine's failure is one line
            message = str(exc) if isinstance(exc, EngineError) else describe(exc)
            out.append(EngineModels(name, label, [], message))
    pool.shutdown(wait=False)
    return out
