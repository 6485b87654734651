"""Embeddings: one unit-length vector per input, from an encoder model opened
with ``embedding=True``.

Runs on the engine thread only. The batching is llama-cpp-python's own
``Llama.embed`` (sequences packed into one ``llama_decode`` up to the batch
size, each read back with ``llama_get_embeddings_seq``), taken a step lower so
that token-id inputs (what LangChain sends) go the same way as text.

Which models embed is read from the GGUF header alone, without llama.cpp, so
the server can answer a 400 before anything is queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmm_tray.engine.types import EngineError
from rmm_tray.models.gguf import GGUFInfo

#: Encoder architectures llama.cpp pools into one vector (their GGUFs also carry
#: ``ARCH.pooling_type``, which is what is looked for first).
ENCODERS = ("bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert",
            "t5encoder", "neo-bert")

#: llama.cpp's ``enum llama_pooling_type``; NONE gives a vector per token and
#: RANK a reranker's score, neither of which is one embedding per input.
POOLING_NAMES = {-1: "unspecified", 0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}
ONE_VECTOR = (-1, 1, 2, 3)

Item = str | list[int]


class EmbedInputError(EngineError):
    """An input the model cannot take (too long, a token id outside its vocabulary):
    the request's fault, not the engine's."""


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    #: Tokens read, all inputs together (what OpenAI reports as usage).
    prompt_tokens: int
    model: str


def is_encoder(info: GGUFInfo) -> bool:
    return info.arch_key("pooling_type") is not None or info.architecture in ENCODERS


def file_is_encoder(path: Path) -> bool | None:
    """The header's answer; None for a file that cannot be read, which the loader
    then reports in its own words."""
    from rmm_tray.models.store import read_header_or_error

    try:
        info, _ = read_header_or_error(path)  # remembered: asked per API request
    except OSError:
        return None
    return is_encoder(info) if info is not None else None


def check_pooling(info: GGUFInfo, name: str) -> None:
    pooling = info.arch_key("pooling_type")
    if pooling is not None and int(pooling) not in ONE_VECTOR:
        kind = POOLING_NAMES.get(int(pooling), str(pooling))
        raise EngineError(f"{name} has pooling type {kind!r}: it does not make one vector per "
                          "input, so it cannot serve embeddings")


def token_lists(llama: Any, items: Sequence[Item], name: str) -> list[list[int]]:
    """Each input as the tokens the model reads: text tokenized as ``Llama.embed``
    does (with the model's own [CLS]/[SEP]), token ids as given."""
    n_vocab = llama.n_vocab()
    # A non-causal encoder reads each sequence in one ubatch, and BERT's learned
    # positions end at its training context: past either, llama.cpp aborts the process.
    limit = min(llama.n_ctx(), llama.n_batch, llama.context_params.n_ubatch,
                llama._model.n_ctx_train())
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            tokens = llama.tokenize(item.encode("utf-8"))
        else:
            tokens = list(item)
            bad = next((t for t in tokens if not 0 <= t < n_vocab), None)
            if bad is not None:
                raise EmbedInputError(f"input {i}: token id {bad} is outside {name}'s vocabulary "
                                      f"(0 to {n_vocab - 1})")
        if not tokens:
            raise EmbedInputError(f"input {i} is empty")
        if len(tokens) > limit:
            raise EmbedInputError(f"input {i} is {len(tokens)} tokens; {name} reads at most {limit} "
                                  "per input")
        out.append(tokens)
    return out


def embed_items(llama: Any, items: Sequence[Item], name: str) -> Embeddings:
    """Unit-length vectors for ``items`` on an open embedding model."""
    import llama_cpp

    # Unit length as OpenAI's vectors (a dot product is the cosine), by the same
    # function as Llama.embed(normalize=True).
    from llama_cpp._internals import normalize_embedding

    if not llama.context_params.embeddings:
        raise EngineError(f"{name} was not opened for embeddings")
    pooling = llama.pooling_type()
    if pooling not in ONE_VECTOR:
        kind = POOLING_NAMES.get(pooling, str(pooling))
        raise EngineError(f"{name} has pooling type {kind!r}: it cannot serve embeddings")
    sequences = token_lists(llama, items, name)
    n_embd = llama.n_embd()
    n_batch = llama.n_batch
    n_seq_max = llama.context_params.n_seq_max
    vectors: list[list[float]] = []
    batch: list[int] = []  # the sizes of the sequences in llama._batch

    def decode() -> None:
        llama._ctx.kv_cache_clear()
        llama._ctx.decode(llama._batch)
        llama._batch.reset()
        for seq in range(len(batch)):
            ptr = llama_cpp.llama_get_embeddings_seq(llama._ctx.ctx, seq)
            vectors.append(normalize_embedding(ptr[:n_embd]))
        batch.clear()

    llama._batch.reset()
    try:
        for tokens in sequences:
            if batch and (sum(batch) + len(tokens) > n_batch or len(batch) >= n_seq_max):
                decode()
            # Every token an output: llama.cpp pools from them (llama-cpp-python#2208).
            llama._batch.add_sequence(tokens, len(batch), True)
            batch.append(len(tokens))
        if batch:
            decode()
    except RuntimeError as exc:  # llama_decode's failure, raised by llama-cpp-python
        raise EngineError(f"{name}: could not compute embeddings ({exc})") from None
    finally:
        llama._batch.reset()
        llama._ctx.kv_cache_clear()
        llama.reset()
    return Embeddings(vectors, sum(len(t) for t in sequences), name)
