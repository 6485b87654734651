"""Prompt-lookup decoding against plain decoding, end to end, printed as a table.

    python bench/speculative.py [--rounds N] [--threads N] [--model PATH] [--json FILE]

Each side is `rmm-tray chat --json` in its own process, one at a time, on the
same model, prompt and settings (greedy, repeat_penalty 1.0, flash attention
auto); the only difference is `speculative = "prompt-lookup"` in the data home's
config.toml. Decode speed is timed from outside, from the token lines as they
arrive (tokens counted by the done event's completion_tokens, since one line may
carry several tokens when guesses are accepted). The reply of both sides must be
the same text; the table says whether it was. Ratios are the median of the
per-round ratios, sides alternating which goes first; other processes' CPU load
is reported for each run.
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

PARAGRAPH = (
    "Yesterday me and my friend goes to the market for buy some vegetable, but when we arrives "
    "there the most of the shop was already close. The man who sell tomatoes tell us that they "
    "closes early on every tuesdays because the delivery truck dont come. We was very "
    "disappointed, because we has planned to cooking a big dinner for our familys. So we decide "
    "to walking to the other market, which is more far from our house, but it have more shops "
    "and they opens until late. On the way we seen a old woman who was carrying many heavy bag, "
    "and we helps her to carry them to her home, who was near the park. She were very happy and "
    "she give us some apple from her garden. When we finally arrive to the second market, it "
    "was very crowded and we needs to wait long time in the queue. At the end we buyed "
    "everything what we needed and we cooks a delicious soup, and everybody in the family say "
    "that it was the best soup they ever eaten. Next time we will checking the opening hours "
    "before we leaves the house, because nobody want to walk so much for nothing again. "
    "It was a long day but we was happy and tired in the evening. My brother, who are "
    "twelve years old, say that next week he want to come with us, because he like to carry "
    "the bags and talking with the sellers. My mother tell him that he can comes only if he "
    "finish his homeworks before, and he promise that he will do it every days. I thinks "
    "that it will be a good idea, because more peoples can carry more things and the "
    "shopping will be more faster and more funny for everybody."
)
PROMPT = f"Correct the grammar of this paragraph. Reply with the corrected paragraph only.\n\n{PARAGRAPH}"
TARGET = 1.5


#: A prompt with little of itself to copy (the starter base model loops, though,
#: and so finds its own earlier words).
STORY = "Write a short story about a lighthouse keeper who finds a strange map."


def side(home: Path, model_name: str, max_tokens: int, prompt: str = PROMPT) -> dict[str, Any]:
    run = eb.spawn([eb.PY, "-m", "rmm_tray", "chat", "--json", "-m", model_name,
                    "--max-tokens", str(max_tokens), "--temperature", "0", prompt],
                   env={**eb.os.environ, "RMM_HOME": str(home)})
    if run.rc != 0:
        raise RuntimeError(f"rmm-tray chat failed: {run.why()}")
    done = run.last("done") or {}
    times = run.times("token")
    text = "".join(e["text"] for _, e in run.events if e.get("type") == "token")
    tokens = int(done.get("completion_tokens") or 0)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    # The first line carries the first token; every token after it came in the span.
    rate = (tokens - 1) / span if span > 0 and tokens > 1 else None
    return {"rate": rate, "tokens": tokens, "text": text, "others": run.others,
            "engine_rate": done.get("decode_tok_s")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    eb.chat_bench_args(ap, ctx=2048)
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    args.flash_attn = "auto"
    model = eb.chosen_model(args)
    if model is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        homes = {}
        for name, extra in (("plain", ""), ("prompt-lookup", 'speculative = "prompt-lookup"\n')):
            home = Path(tmp) / name
            model_name, text = eb.make_home(home, model, args)
            (home / "config.toml").write_text(text + extra, encoding="utf-8")
            homes[name] = home
        results = {}
        for case, prompt in (("rewrite", PROMPT), ("story", STORY)):
            rounds = []
            for r in range(args.rounds):
                order = ("plain", "prompt-lookup") if r % 2 == 0 else ("prompt-lookup", "plain")
                got = {name: side(homes[name], model_name, args.max_tokens, prompt) for name in order}
                rounds.append(got)
                print(f"{case} round {r + 1}: " + ", ".join(
                    f"{n} {g['rate'] or 0:.1f} tok/s ({g['tokens']} tokens, others {g['others']})"
                    for n, g in got.items()), file=sys.stderr)
            results[case] = rounds
    print("| what | prompt-lookup | plain | ratio | target | same reply | other CPU load |")
    print("|---|---|---|---|---|---|---|")
    notes = []
    for case, rounds in results.items():
        ratios = [g["prompt-lookup"]["rate"] / g["plain"]["rate"] for g in rounds
                  if g["plain"]["rate"] and g["prompt-lookup"]["rate"]]
        same = all(g["plain"]["text"] == g["prompt-lookup"]["text"] for g in rounds)
        if not same:
            a, b = rounds[0]["plain"]["text"], rounds[0]["prompt-lookup"]["text"]
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            notes.append(f"{case}: first difference at character {at} of {len(a)}: "
                         f"{a[max(0, at - 30):at + 20]!r} vs {b[max(0, at - 30):at + 20]!r}")
        med = {n: statistics.median(g[n]["rate"] for g in rounds if g[n]["rate"])
               for n in ("plain", "prompt-lookup")}
        others = [g[n]["others"] for g in rounds for n in g if g[n]["others"] is not None]
        ratio = statistics.median(ratios) if ratios else None
        what = (f"correct the grammar of a {len(PARAGRAPH.split())}-word paragraph" if case == "rewrite"
                else "a short story")
        target = f"≥ {TARGET} ({'met' if ratio and ratio >= TARGET else 'missed'})" if case == "rewrite" \
            else "no slowdown"
        print(f"| decode, `rmm-tray chat --json`, {what}, greedy, {rounds[0]['plain']['tokens']} tokens | "
              f"{med['prompt-lookup']:.1f} tok/s | {med['plain']:.1f} tok/s | "
              f"{ratio:.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | {target} | "
              f"{'yes' if same else 'no'} | {statistics.median(others) if others else '?'} CPUs "
              f"(max {max(others) if others else '?'}) |")
    print(f"\n{args.rounds} rounds, threads {args.threads}, context {args.ctx}, model {model.name}, "
          f"flash attention auto, repeat_penalty 1.0.")
    for note in notes:
        print(f"- {note}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
