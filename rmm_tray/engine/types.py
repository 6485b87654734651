"""What goes into the engine and what comes out of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rmm_tray.errors import RmmError


class EngineError(RmmError, RuntimeError):
    """A request failed; ``str(err)`` is one line a person can act on."""


@dataclass(frozen=True)
class EngineSettings:
    context_length: int = 4096
    #: -1: all layers when llama.cpp has GPU support, else none.
    gpu_layers: int = -1
    #: 0: the number of physical cores.
    threads: int = 0
    #: "" = the GGUF's template, else a fallback name ("gemma", "chatml", ...).
    chat_template: str = ""
    state_cache_bytes: int = 512 << 20
    batch_size: int = 512
    #: "auto" (llama.cpp's default: on where the backend supports it), "on" or "off".
    flash_attn: str = "auto"


@dataclass(frozen=True)
class GenParams:
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    #: 1.0 (off), as llama.cpp: a penalty walks the whole vocabulary every token.
    repeat_penalty: float = 1.0
    seed: int | None = None
    #: "prompt-lookup": guess tokens from the prompt and check them in one batch
    #: (greedy sampling only); "" = plain decoding.
    speculative: str = ""
    #: Texts that end the reply where they appear (not shown), besides the template's own.
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Token:
    text: str
    type: str = "token"


@dataclass(frozen=True)
class Done:
    model: str
    prompt_tokens: int
    #: Prompt tokens served from the KV cache instead of being processed again.
    cached_tokens: int
    completion_tokens: int
    ttft_s: float
    prompt_tok_s: float
    decode_tok_s: float
    #: "stop" (end of turn), "length" (max tokens or context full) or "cancelled".
    stop_reason: str
    type: str = "done"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Failed:
    message: str
    type: str = "error"


Event = Token | Done | Failed


class EventStream:
    """What every reply stream offers on top of its ``batches()``: the events one
    by one, or the whole text (the local engine's ChatStream and a plugin
    engine's stream share it)."""

    def batches(self) -> Iterator[list[Event]]:  # pragma: no cover - each stream has its own
        raise NotImplementedError

    def __iter__(self) -> Iterator[Event]:
        for batch in self.batches():
            yield from batch

    def text(self) -> str:
        """Wait for the whole reply; raise EngineError if it failed."""
        parts = []
        for event in self:
            if isinstance(event, Token):
                parts.append(event.text)
            elif isinstance(event, Failed):
                raise EngineError(event.message)
        return "".join(parts)



@dataclass(frozen=True)
class LoadedModel:
    path: Path
    #: The model's name everywhere (its path relative to models/).
    name: str
    architecture: str
    n_ctx: int
    n_ctx_train: int
    gpu_layers: int
    threads: int
    chat_template: str  # "gguf" or the fallback's name
    load_s: float


@dataclass(frozen=True)
class EngineStatus:
    state: str  # "idle" | "loading" | "generating"
    model: Path | None
    error: str | None = None
