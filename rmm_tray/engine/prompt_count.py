"""The prompt text a model would see for some messages, and its token count,
from a tokenizer-only load of the model (llama.cpp's ``vocab_only``).

The builder counts as the person types: this must neither wait for nor disturb
a reply the engine is generating, so it never touches the engine's context. The
text comes from the same chat template, and the count from the same tokenizer
call, as the engine's own (``choose_format``, ``tokenize_prompt``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp._internals import LlamaModel

from rmm_tray.engine import llama_log
from rmm_tray.engine.chat_format import ChatFormat, choose_format
from rmm_tray.engine.generation import tokenize_prompt
from rmm_tray.engine.types import EngineError
from rmm_tray.models.gguf import GGUFError, read_gguf


@dataclass(frozen=True)
class CountedPrompt:
    text: str
    tokens: int
    #: The context the model was trained for (the settings may ask for less).
    n_ctx_train: int
    chat_template: str


@dataclass
class _Vocab:
    model: LlamaModel
    fmt: ChatFormat
    bos: str
    n_ctx_train: int
    mtime: float


def _piece(model: LlamaModel, token: int) -> str:
    if token < 0:
        return ""
    return model.detokenize([token], special=True).decode("utf-8", errors="replace")


class PromptCounter:
    """Keeps one vocabulary per (model, template override); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vocabs: dict[tuple[Path, str], _Vocab] = {}

    def _vocab(self, path: Path, chat_template: str) -> _Vocab:
        key = (path, chat_template)
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise EngineError(f"model file not found: {path}") from exc
        found = self._vocabs.get(key)
        if found is not None and found.mtime == mtime:
            return found
        try:
            info = read_gguf(path)
        except GGUFError as exc:
            raise EngineError(str(exc)) from None
        llama_log.install()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        try:
            model = LlamaModel(path_model=str(path), params=params, verbose=False)
        except ValueError as exc:
            raise EngineError(f"{path.name}: the tokenizer could not be read ({exc})") from None
        try:
            fmt = choose_format(gguf_template=info.chat_template, architecture=info.architecture,
                                override=chat_template, bos=_piece(model, model.token_bos()),
                                eos=_piece(model, model.token_eos()))
        except EngineError:
            model.close()
            raise
        vocab = _Vocab(model, fmt, _piece(model, model.token_bos()),
                       int(info.context_length or model.n_ctx_train()), mtime)
        old = self._vocabs.pop(key, None)
        if old is not None:
            old.model.close()
        self._vocabs[key] = vocab
        return vocab

    def count(self, path: Path, messages: Sequence[dict[str, Any]], *,
              chat_template: str = "") -> CountedPrompt:
        """``messages`` through ``path``'s chat template, as the engine renders a
        reply's prompt (with the generation prompt), and its tokens."""
        with self._lock:
            vocab = self._vocab(Path(path), chat_template)
            text = vocab.fmt.render(list(messages))
            tokens = tokenize_prompt(vocab.model, text, vocab.bos)  # type: ignore[arg-type]
            return CountedPrompt(text, len(tokens), vocab.n_ctx_train, vocab.fmt.name)

    def close(self) -> None:
        with self._lock:
            for vocab in self._vocabs.values():
                vocab.model.close()
            self._vocabs.clear()
