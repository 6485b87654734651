"""The raw baseline for bench/engine.py: a bare llama_decode loop, in its own process.

    python bench/raw_llama.py --model PATH --threads N --ctx N --batch N \\
        --text-file FILE --prompt-tokens N --gen N [--flash-attn auto|on|off]
    python bench/raw_llama.py --model PATH --count FILE    # token counts, vocabulary only

It opens the model and one context through llama-cpp-python's low-level bindings
(llama.cpp's C API, nothing of ``Llama``), with llama.cpp's default context
parameters except the ones the engine sets too (context, batch, threads), and
the sampler chain ``Llama`` builds for temperature 0 (penalties with repeat 1.0,
a no-op, then greedy). It prints JSON lines on stdout, one per event and flushed
at once, so that bench/engine.py times this process the way it times
``rmm-tray chat --json``: by when each token line arrives.

    {"type": "loaded", "load_s": ..., "settings": {...}}   model and context open
    {"type": "ready", "prompt_tokens": N}                   the prompt's decode starts
    {"type": "token", "id": ...}                            one per generated token
    {"type": "done", "prompt_tokens", "completion_tokens", "ttft_s", "decode_tok_s", "eog"}

End-of-generation is ignored: exactly ``--gen`` tokens are decoded whatever the
model samples (``eog`` says how many of them were an end-of-generation token).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import llama_cpp

#: What Llama(last_n_tokens_size=64) gives the penalties sampler.
PENALTY_LAST_N = 64
FLASH_ATTN = {"auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
              "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
              "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED}


def emit(event: dict) -> None:
    # One write and one flush per line, as the CLI's json_line does.
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def silence_llama_log() -> None:
    """llama.cpp logs every load to stderr; the parent keeps stderr for errors."""
    @llama_cpp.llama_log_callback
    def quiet(level, text, user_data):  # noqa: ANN001
        return None

    silence_llama_log.keep = quiet  # type: ignore[attr-defined]  # ctypes must not free it
    llama_cpp.llama_log_set(quiet, None)


class RawLlama:
    """One model and one context, opened with the C API."""

    def __init__(self, path: Path, *, n_ctx: int, threads: int, n_batch: int,
                 flash_attn: str = "auto", vocab_only: bool = False) -> None:
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0  # the engine's config says gpu_layers = 0 too
        mparams.vocab_only = vocab_only
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.ctx = self.sampler = None
        self.n_batch = n_batch
        if vocab_only:
            return
        # llama.cpp's defaults, but for what the engine sets as well: the same
        # context, batch (and micro-batch, as Llama(n_ubatch=512) does) and threads.
        # Flash attention stays at llama.cpp's "auto" unless asked otherwise.
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = min(n_batch, cparams.n_ubatch)
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.flash_attn_type = FLASH_ATTN[flash_attn]
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        # The chain Llama._init_sampler builds at temperature 0: penalties (repeat
        # 1.0 is a no-op, but it is in the engine's chain, so it is here) + greedy.
        self.sampler = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(self.sampler, llama_cpp.llama_sampler_init_penalties(
            llama_cpp.llama_vocab_n_tokens(self.vocab), PENALTY_LAST_N, 1.0, 0.0, 0.0))
        llama_cpp.llama_sampler_chain_add(self.sampler, llama_cpp.llama_sampler_init_greedy())
        self.settings = {
            "n_ctx": llama_cpp.llama_n_ctx(self.ctx),
            "n_batch": llama_cpp.llama_n_batch(self.ctx),
            "n_ubatch": llama_cpp.llama_n_ubatch(self.ctx),
            "n_threads": cparams.n_threads, "n_threads_batch": cparams.n_threads_batch,
            "flash_attn_type": flash_attn, "n_gpu_layers": 0,
            "load_mode": "llama_model_default_params()",
            "sampler": f"penalties(last_n={PENALTY_LAST_N}, repeat=1.0, freq=0, present=0) "
                       "+ greedy",
            "end_of_generation": "ignored",
        }

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        room = len(data) + 8
        buf = (llama_cpp.llama_token * room)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, room, True, False)
        if n < 0:
            raise RuntimeError("tokenize: buffer too small")
        return list(buf[:n])

    def decode(self, tokens: Sequence[int]) -> None:
        for i in range(0, len(tokens), self.n_batch):
            chunk = tokens[i:i + self.n_batch]
            arr = (llama_cpp.llama_token * len(chunk))(*chunk)
            if llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(arr, len(chunk))):
                raise RuntimeError("llama_decode failed (context full?)")

    def sample(self) -> int:
        # llama_sampler_sample also accepts the token into the chain (penalty history).
        return llama_cpp.llama_sampler_sample(self.sampler, self.ctx, -1)

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))


def fit_tokens(tokens: list[int], n: int) -> list[int]:
    """Exactly n tokens: which ids they are barely changes the work, their count does."""
    if not tokens:
        raise ValueError("no tokens to pad")
    while len(tokens) < n:
        tokens = tokens + tokens[1:]  # keep a single BOS at the front
    return tokens[:n]


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    raw = RawLlama(args.model, n_ctx=args.ctx, threads=args.threads, n_batch=args.batch,
                   flash_attn=args.flash_attn)
    emit({"type": "loaded", "load_s": round(time.perf_counter() - started, 4),
          "settings": raw.settings})
    prompt = fit_tokens(raw.tokenize(Path(args.text_file).read_text(encoding="utf-8")),
                        args.prompt_tokens)
    emit({"type": "ready", "prompt_tokens": len(prompt)})
    t0 = time.perf_counter()
    raw.decode(prompt)
    token = raw.sample()
    first = time.perf_counter()
    emit({"type": "token", "id": token})
    eog = int(raw.is_eog(token))
    step = (llama_cpp.llama_token * 1)()
    for _ in range(args.gen - 1):
        step[0] = token
        if llama_cpp.llama_decode(raw.ctx, llama_cpp.llama_batch_get_one(step, 1)):
            raise RuntimeError("llama_decode failed (context full?)")
        token = raw.sample()
        eog += raw.is_eog(token)
        emit({"type": "token", "id": token})
    last = time.perf_counter()
    emit({"type": "done", "prompt_tokens": len(prompt), "completion_tokens": args.gen,
          "ttft_s": round(first - t0, 5),
          "decode_tok_s": round((args.gen - 1) / (last - first), 3) if args.gen > 1 else None,
          "eog": eog})


def count(args: argparse.Namespace) -> None:
    raw = RawLlama(args.model, n_ctx=0, threads=1, n_batch=1, vocab_only=True)
    texts = json.loads(Path(args.count).read_text(encoding="utf-8"))
    emit({"type": "counts", "counts": [len(raw.tokenize(t)) for t in texts]})


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--flash-attn", choices=sorted(FLASH_ATTN), default="auto")
    ap.add_argument("--text-file", type=Path, help="the prompt's text (padded or cut)")
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--gen", type=int, default=128, help="tokens to generate, EOG ignored")
    ap.add_argument("--count", type=Path, metavar="FILE",
                    help="a JSON list of texts: print their token counts (BOS included)")
    args = ap.parse_args(argv)
    silence_llama_log()
    if args.count:
        count(args)
    else:
        if args.text_file is None:
            ap.error("--text-file is needed to run")
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
