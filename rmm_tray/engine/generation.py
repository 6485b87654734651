"""One chat turn on an open model: prompt in, events out.

Runs on the engine thread only. The longest KV prefix already in the context is
kept, so the next turn of a chat processes only what is new; the tokens are
decoded and sampled in ``decode`` through llama.cpp's own API.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import llama_cpp
import numpy as np

from rmm_tray.engine.chat_format import ChatFormat
from rmm_tray.engine.decode import Decoder, NgramIndex, feed, sampled_tokens
from rmm_tray.engine.types import Done, EngineError, GenParams, Token

log = logging.getLogger(__name__)


class StopScanner:
    """Holds back text that may be the start of a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.keep = max((len(s) for s in self.stops), default=1) - 1
        self.buffer = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to show, whether a stop string was reached)."""
        self.buffer += text
        if not self.stops:
            out, self.buffer = self.buffer, ""
            return out, False
        hits = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buffer = self.buffer[: min(hits)], ""
            return out, True
        cut = len(self.buffer) - self.keep
        # Keep back only a tail that could still grow into a stop string.
        while cut < len(self.buffer) and not any(
            s.startswith(self.buffer[cut:]) for s in self.stops
        ):
            cut += 1
        out, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out


def fit_messages(
    messages: list[dict[str, Any]], count: Callable[[list[dict[str, Any]]], int], limit: int,
    lower_bound: Callable[[dict[str, Any]], int] | None = None,
) -> list[dict[str, Any]]:
    """Drop the oldest turns (never the system message or the last message) until
    the prompt fits in ``limit`` tokens.

    The kept part starts at a user message (or is the last message alone). Where
    it starts is found by bisection, so a long chat is counted a few times, not
    once per dropped message (which made long chats quadratic). ``lower_bound``
    (a message's own tokens, never more than it adds to the prompt) lets the walk
    from the newest message stop where no earlier start can fit, so a 2,000-message
    history is neither rendered nor tokenized whole: tokenizing is the dear part."""
    msgs = list(messages)
    head = [m for m in msgs[:1] if m["role"] == "system"]
    body = msgs[len(head):]
    skip = 0
    if lower_bound is not None:
        total = 0
        for i in range(len(body) - 1, -1, -1):
            total += lower_bound(body[i])
            if total > limit:
                skip = i + 1  # body[i:] cannot fit, so no earlier start can
                break
    if skip == 0 and count(head + body) <= limit:
        return head + body
    # A conversation should start with the user speaking.
    starts = [i for i in range(max(1, skip), len(body)) if body[i]["role"] == "user"]
    if not starts or starts[-1] != len(body) - 1:
        starts.append(len(body) - 1)
    lo, hi = 0, len(starts) - 1
    last = count(head + body[starts[hi]:])
    if last > limit:
        raise EngineError(
            f"the message is longer than the context ({last} > {limit} "
            "tokens); shorten it or raise context_length"
        )
    # Fewer messages never take more tokens: find the earliest start that fits.
    while lo < hi:
        mid = (lo + hi) // 2
        if count(head + body[starts[mid]:]) <= limit:
            hi = mid
        else:
            lo = mid + 1
    kept = body[starts[lo]:]
    log.info("dropped %d old messages to fit the context", len(body) - len(kept))
    return head + kept


def content_tokens(llama: llama_cpp.Llama, text: str) -> int:
    """A message's own tokens, without the template around it: a lower bound on
    what it adds to a prompt."""
    return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0


def tokenize_prompt(llama: llama_cpp.Llama, prompt: str, bos_text: str) -> list[int]:
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab)) and not (
        bos_text and prompt.startswith(bos_text)
    )
    return llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)


def cached_prefix(llama: llama_cpp.Llama, tokens: list[int]) -> int:
    n = min(llama.n_tokens, len(tokens))
    if n == 0:
        return 0
    diff = np.nonzero(llama.input_ids[:n] != np.asarray(tokens[:n], dtype=np.intc))[0]
    return int(diff[0]) if diff.size else n


def run_turn(
    llama: llama_cpp.Llama,
    fmt: ChatFormat,
    messages: list[dict[str, Any]],
    params: GenParams,
    cancel: threading.Event,
    *,
    model_name: str,
    bos_text: str,
    continue_reply: bool = False,
) -> Iterator[Token | Done]:
    """Decode a reply to ``messages``. ``continue_reply``: the last message is a
    reply cut off (by the token limit); the prompt is the conversation before it
    with the assistant's turn opened and that reply's text after it, so the model
    goes on with the same reply, and the KV prefix, which holds it, is reused."""
    started = time.perf_counter()
    partial = ""
    if continue_reply:
        if not messages or messages[-1].get("role") != "assistant":
            raise EngineError("nothing to continue: the last message is not a reply")
        partial = str(messages[-1].get("content") or "")
        messages = messages[:-1]

    def render(kept: list[dict[str, Any]]) -> str:
        # Rendered before the open reply, not with it: templates close every turn.
        return fmt.render(kept) + partial

    n_ctx = llama.n_ctx()
    reserve = min(params.max_tokens, max(16, n_ctx // 4))
    counted: dict[int, list[int]] = {}  # prompt tokens by the number of messages kept

    def count(kept: list[dict[str, Any]]) -> int:
        counted[len(kept)] = tokenize_prompt(llama, render(kept), bos_text)
        return len(counted[len(kept)])

    prompt = render(messages)
    if len(prompt.encode("utf-8")) + 1 <= n_ctx - reserve:
        # Every token is at least one byte (and BOS one more): it fits, count nothing.
        tokens = tokenize_prompt(llama, prompt, bos_text)
    else:
        messages = fit_messages(messages, count, n_ctx - reserve,
                                lower_bound=lambda m: content_tokens(llama, m.get("content") or ""))
        tokens = counted.get(len(messages)) or tokenize_prompt(llama, render(messages), bos_text)
    cached = cached_prefix(llama, tokens)
    if cached == len(tokens):
        cached -= 1  # decode the last prompt token again for fresh logits
    budget = min(params.max_tokens, n_ctx - len(tokens))

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    scanner = StopScanner([*fmt.stop, *params.stop])
    pieces: dict[int, bytes | None] = {}
    completion = 0
    received = 0  # every sampled token, end-of-turn included: each cost a decode
    first_at: float | None = None
    stop_reason = "length"
    leading = not fmt.raw and not partial  # a continuation keeps its first space
    native = Decoder(llama, params)
    try:
        first = native.start(tokens, max(cached, 0))
        index = NgramIndex(tokens) if native.speculative else None
        for token in sampled_tokens(native, first, index, max(budget, 1)):
            received += 1
            if first_at is None:
                first_at = time.perf_counter()
            if cancel.is_set():
                stop_reason = "cancelled"
                break
            piece = pieces.get(token)
            if piece is None:  # a token's text and kind never change: ask llama.cpp once
                piece = pieces[token] = (
                    None if llama_cpp.llama_vocab_is_eog(vocab, token) else llama.detokenize([token])
                )
            if piece is None:
                stop_reason = "stop"
                break
            completion += 1
            text, stopped = scanner.feed(decoder.decode(piece))
            if leading and text:
                text = text.lstrip()
                leading = not text
            if text:
                yield Token(text)
            if stopped:
                stop_reason = "stop"
                break
            if completion >= budget:
                break
    finally:
        native.close()
    if stop_reason != "stop":
        tail = scanner.flush() + decoder.decode(b"", final=True)
        if tail and not (leading and not tail.strip()):
            yield Token(tail.lstrip() if leading else tail)
    ended = time.perf_counter()
    first_at = first_at or ended
    prompt_s = first_at - started
    decode_s = ended - first_at
    yield Done(
        model=model_name,
        prompt_tokens=len(tokens),
        cached_tokens=max(cached, 0),
        completion_tokens=completion,
        ttft_s=round(prompt_s, 4),
        prompt_tok_s=round((len(tokens) - max(cached, 0)) / prompt_s, 2) if prompt_s > 0 else 0.0,
        decode_tok_s=round((received - 1) / decode_s, 2) if received > 1 and decode_s > 0 else 0.0,
        stop_reason=stop_reason,
    )


#: The most tokens decoded ahead of the next turn.
WARM_MAX = 256
#: Stands for the next question when the template is asked how a turn begins.
_NEXT = "\u2063next\u2063"


def warm_next_turn(
    llama: llama_cpp.Llama, fmt: ChatFormat, messages: list[dict[str, Any]], reply: str,
    *, bos_text: str,
) -> int:
    """Decode, right after a reply, what the next turn's prompt surely begins
    with: the end of this reply and the template's opening of the next user
    message (for Gemma ``<end_of_turn>\n<start_of_turn>user\n``). The next
    question then pays only for its own tokens while the person reads the
    answer, so a late turn of a chat starts as fast as the first one. Returns
    how many tokens were decoded (0 when there is nothing sure to add)."""
    if fmt.raw:
        return 0
    text = fmt.render([*messages, {"role": "assistant", "content": reply},
                       {"role": "user", "content": _NEXT}])
    cut = text.find(_NEXT)
    if cut <= 0:
        return 0
    # The last token before the question may merge with its first characters
    # once it is known: leave it to the next turn.
    tokens = tokenize_prompt(llama, text[:cut], bos_text)[:-1]
    cached = cached_prefix(llama, tokens)
    # A short tail (more only where the reply tokenizes otherwise than it was
    # sampled), with room to spare: the next request may be waiting behind it.
    if len(tokens) - cached > WARM_MAX or len(tokens) + 64 >= llama.n_ctx():
        return 0
    feed(llama, tokens, cached)
    return len(tokens) - cached
