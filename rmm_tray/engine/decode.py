"""The per-token path, close to the metal: llama.cpp's own sampler chain and
``llama_decode`` through the low-level bindings, without ``Llama.generate``'s
Python bookkeeping. Nothing per token is the size of the vocabulary.

The ``Llama`` object still owns the model and the context, and its
``input_ids``/``n_tokens`` are kept up to date here, so the next turn finds its
KV prefix and the state cache can save and restore a chat.

Prompt-lookup decoding (``speculative="prompt-lookup"``): when the reply copies
the prompt (rewrite, fix, translate in place), the tokens after the latest
earlier occurrence of the last few tokens are a good guess of what comes next.
They are checked in one batched decode and the longest prefix the model agrees
with is kept, so several tokens can cost one decode. Only under greedy sampling:
there the kept tokens are exactly the ones plain decoding picks; under
sampling, speculative acceptance needs the sampler chain's whole distribution at
each position, which llama.cpp's chain does not hand out cheaply.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import llama_cpp

from rmm_tray.engine.types import EngineError, GenParams

#: How many recent tokens the penalty sampler looks at (llama.cpp's and
#: llama-cpp-python's default).
PENALTY_LAST_N = 64
#: Prompt lookup: the longest and shortest n-gram matched, and the most tokens guessed.
NGRAM_MAX, NGRAM_MIN, DRAFT_MAX = 3, 2, 10
PROMPT_LOOKUP = "prompt-lookup"


class Sampler:
    """llama.cpp's sampler chain for ``params``: the same links, in the same order,
    as llama-cpp-python builds (penalties, then greedy, or top-k, top-p, min-p,
    temperature and a seeded draw). A repeat penalty of 1.0 leaves the penalty
    link out: it would only cost a pass over the vocabulary."""

    def __init__(self, params: GenParams) -> None:
        self.greedy = params.temperature <= 0
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        links = []
        if params.repeat_penalty != 1.0:
            # The binding still declares llama.cpp's old first argument (n_vocab),
            # which the C function no longer takes: the window goes first, twice,
            # so it lands where the library reads it.
            links.append(llama_cpp.llama_sampler_init_penalties(
                PENALTY_LAST_N, PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0))
        if self.greedy:
            links.append(llama_cpp.llama_sampler_init_greedy())
        else:
            seed = params.seed if params.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
            links += [llama_cpp.llama_sampler_init_top_k(params.top_k),
                      llama_cpp.llama_sampler_init_top_p(params.top_p, 1),
                      llama_cpp.llama_sampler_init_min_p(params.min_p, 1),
                      llama_cpp.llama_sampler_init_temp(params.temperature),
                      llama_cpp.llama_sampler_init_dist(seed)]
        for link in links:  # the chain owns (and frees) its links
            llama_cpp.llama_sampler_chain_add(self.chain, link)

    def sample(self, ctx: llama_cpp.llama_context_p, idx: int = -1) -> int:
        """The token at output ``idx`` of the last decode (it is accepted too)."""
        return int(llama_cpp.llama_sampler_sample(self.chain, ctx, idx))

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self.chain)


class NgramIndex:
    """Where each recent n-gram of the history last ended, kept as tokens arrive,
    so a guess costs a dictionary lookup and not a scan of the history."""

    def __init__(self, tokens: Sequence[int]) -> None:
        self.tokens: list[int] = []
        self.last: dict[tuple[int, ...], int] = {}
        for t in tokens:
            self.append(t)

    def append(self, token: int) -> None:
        toks = self.tokens
        # Register the n-grams that end just before the new token: their
        # continuation (from this position on) is known from now.
        end = len(toks)
        for n in range(NGRAM_MIN, NGRAM_MAX + 1):
            if end >= n:
                self.last[tuple(toks[end - n:end])] = end
        toks.append(token)

    def draft(self, limit: int) -> list[int]:
        toks = self.tokens
        for n in range(NGRAM_MAX, NGRAM_MIN - 1, -1):
            if len(toks) <= n:
                continue
            at = self.last.get(tuple(toks[-n:]))
            if at is not None:
                return toks[at:at + min(limit, DRAFT_MAX)]
        return []


def feed(llama: llama_cpp.Llama, tokens: Sequence[int], cached: int) -> None:
    """Keep the first ``cached`` tokens of the context and decode the rest of
    ``tokens`` after them, keeping ``Llama``'s record of the context in step."""
    mem = llama_cpp.llama_get_memory(llama.ctx)
    if not llama_cpp.llama_memory_seq_rm(mem, -1, cached, -1):
        llama_cpp.llama_memory_clear(mem, True)
        cached = 0
    llama.n_tokens = cached
    for i in range(cached, len(tokens), llama.n_batch):
        chunk = list(tokens[i:i + llama.n_batch])
        arr = (llama_cpp.llama_token * len(chunk))(*chunk)
        Decoder._check(llama_cpp.llama_decode(llama.ctx, llama_cpp.llama_batch_get_one(arr, len(chunk))))
        n = llama.n_tokens
        llama.input_ids[n:n + len(chunk)] = chunk
        llama.n_tokens = n + len(chunk)


class Decoder:
    """Feeds tokens to the context and samples what comes next."""

    def __init__(self, llama: llama_cpp.Llama, params: GenParams) -> None:
        self.llama = llama
        self.ctx = llama.ctx
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.n_batch = llama.n_batch
        self.sampler = Sampler(params)
        self.step = (llama_cpp.llama_token * 1)()
        self.speculative = params.speculative == PROMPT_LOOKUP and self.sampler.greedy
        self._batch: llama_cpp.llama_batch | None = None

    def close(self) -> None:
        self.sampler.close()
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    def start(self, tokens: Sequence[int], cached: int) -> int:
        """Keep the first ``cached`` tokens of the context, decode the rest of
        ``tokens`` and return the first sampled token."""
        feed(self.llama, tokens, cached)
        return self.sampler.sample(self.ctx)

    def next(self, token: int) -> int:
        """Decode ``token`` (the last one sampled) and sample the one after it."""
        self.step[0] = token
        self._check(llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(self.step, 1)))
        llama = self.llama
        llama.input_ids[llama.n_tokens] = token
        llama.n_tokens += 1
        return self.sampler.sample(self.ctx)

    def next_run(self, token: int, index: NgramIndex | None, room: int) -> list[int]:
        """Decode ``token`` and return the tokens that follow it: one, or under
        prompt lookup every guessed token the model agrees with plus the one it
        picks after them. ``room``: how many more tokens may be produced."""
        draft = index.draft(room - 1) if (self.speculative and index is not None and room > 1) else []
        if not draft:
            return [self.next(token)]
        return self._verify([token, *draft])

    def _verify(self, batch_tokens: list[int]) -> list[int]:
        llama = self.llama
        n = llama.n_tokens
        count = len(batch_tokens)
        if self._batch is None:
            self._batch = llama_cpp.llama_batch_init(DRAFT_MAX + 1, 0, 1)
        batch = self._batch
        batch.n_tokens = count
        for i, tok in enumerate(batch_tokens):
            batch.token[i] = tok
            batch.pos[i] = n + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True
        self._check(llama_cpp.llama_decode(self.ctx, batch))
        llama.input_ids[n:n + count] = batch_tokens
        out: list[int] = []
        for i in range(count):
            picked = self.sampler.sample(self.ctx, i)
            out.append(picked)
            if i + 1 >= count or picked != batch_tokens[i + 1]:
                break
        # Positions n .. n+len(out)-1 hold the decoded token and the guesses the
        # model agreed with; the rest of the batch is dropped from the KV cache.
        kept = n + len(out)
        llama_cpp.llama_memory_seq_rm(self.mem, -1, kept, -1)
        llama.n_tokens = kept
        return out

    @staticmethod
    def _check(status: int) -> None:
        if status != 0:
            raise EngineError(f"llama.cpp could not decode (status {status}); the context may be full")


def sampled_tokens(decoder: Decoder, first: int, index: NgramIndex | None,
                   budget: int) -> Iterator[int]:
    """Every sampled token, starting with ``first``, at most ``budget`` of them.
    The caller stops early by no longer asking."""
    produced = 0
    pending = [first]
    while True:
        for token in pending:
            yield token
            produced += 1
            if index is not None:
                index.append(token)
            if produced >= budget:
                return
        pending = decoder.next_run(pending[-1], index, budget - produced)
