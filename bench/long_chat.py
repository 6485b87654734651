"""Continuing a long chat: time to first token for a 2,000-message chat against a
20-message one, at the same small context, printed as a table.

    python bench/long_chat.py [--rounds N] [--ctx N] [--threads N] [--model PATH]

Each turn is `rmm-tray chat --json -c ID` in its own process (so neither side
has the chat in its KV cache), one at a time, who goes first alternating. Both
chats hold the same kind of exchanges, long enough that the 20 messages nearly
fill the context; the 2,000-message chat drops its oldest turns to fit, so both
prompts are about the context's size and the ratio shows what a long history
itself costs.
Figures: the done event's ttft_s (fitting the messages, templating, tokenizing
and the prompt's decode, as the engine times it) and, from outside, the first
token line after process start. The ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as eb  # noqa: E402  (bench/engine.py: make_home, spawn, the defaults)

TARGET = 1.5
LENGTHS = (20, 2000)


def write_chat(chats: Path, chat_id: str, messages: int) -> None:
    """A chat file as the JSONL backend writes it: a header, then one line a message."""
    lines = [{"type": "chat", "id": chat_id, "title": f"{messages} messages", "created": 1.7e9,
              "model": None}]
    for i in range(messages):
        user = i % 2 == 0
        lines.append({"type": "message", "id": f"m{i}", "created": 1.7e9 + i,
                      "role": "user" if user else "assistant",
                      "content": (f"Question {i // 2}: what number comes right after {i // 2} "
                                  "when you count up by one?" if user
                                  else f"When you count up by one, the number after {i // 2} is "
                                  f"{i // 2 + 1}.")})
    chats.mkdir(parents=True, exist_ok=True)
    (chats / f"{chat_id}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def turn(home: Path, model_name: str, chat_id: str) -> dict[str, Any]:
    run = eb.spawn([eb.PY, "-m", "rmm_tray", "chat", "--json", "-m", model_name, "-c", chat_id,
                    "--max-tokens", "8", "--temperature", "0", "And the next one?"],
                   env={**eb.os.environ, "RMM_HOME": str(home)})
    if run.rc != 0:
        raise RuntimeError(f"rmm-tray chat failed: {run.why()}")
    done = run.last("done") or {}
    first = run.times("token")
    return {"ttft_s": done.get("ttft_s"), "prompt_tokens": done.get("prompt_tokens"),
            "first_line_s": first[0] if first else None, "others": run.others}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    eb.chat_bench_args(ap, ctx=512)
    args = ap.parse_args(argv)
    args.flash_attn = "auto"
    model = eb.chosen_model(args)
    if model is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        model_name, _ = eb.make_home(home, model, args)
        for n in LENGTHS:
            write_chat(home / "chats", f"20260101-000000-{n:06d}", n)
        rounds = []
        for r in range(args.rounds):
            order = LENGTHS if r % 2 == 0 else tuple(reversed(LENGTHS))
            got = {n: turn(home, model_name, f"20260101-000000-{n:06d}") for n in order}
            rounds.append(got)
            print(f"round {r + 1}: " + ", ".join(
                f"{n} messages: ttft {g['ttft_s']} s, {g['prompt_tokens']} prompt tokens, "
                f"others {g['others']}" for n, g in got.items()), file=sys.stderr)
    short, long_ = LENGTHS
    ratios = [g[long_]["ttft_s"] / g[short]["ttft_s"] for g in rounds
              if g[long_]["ttft_s"] and g[short]["ttft_s"]]
    outside = [g[long_]["first_line_s"] / g[short]["first_line_s"] for g in rounds
               if g[long_]["first_line_s"] and g[short]["first_line_s"]]
    med = {n: statistics.median(g[n]["ttft_s"] for g in rounds) for n in LENGTHS}
    others = [g[n]["others"] for g in rounds for n in g if g[n]["others"] is not None]
    ratio = statistics.median(ratios)
    print("| what | 2,000 messages | 20 messages | ratio | target | other CPUs busy |")
    print("|---|---|---|---|---|---|")
    print(f"| TTFT continuing the chat, context {args.ctx} (Done.ttft_s) | {med[long_]:.3f} s | "
          f"{med[short]:.3f} s | {ratio:.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | "
          f"≤ {TARGET} ({'met' if ratio <= TARGET else 'missed'}) | "
          f"{statistics.median(others):.3f} (max {max(others):.3f}) |")
    print(f"| first token line from process start (outside) | | | {statistics.median(outside):.2f} "
          f"({min(outside):.2f}–{max(outside):.2f}) | — | |")
    print(f"\n{args.rounds} rounds, threads {args.threads}, context {args.ctx}, model {model.name}; "
          f"prompt tokens after fitting: {rounds[0][long_]['prompt_tokens']} and "
          f"{rounds[0][short]['prompt_tokens']}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
