"""Decode speed through the popup, timed in the page, against the raw loop.

    python bench/popup_speed.py [--model PATH] [--rounds N] [--tokens N] [--threads N]

The app runs as a person runs it (``rmm-tray start`` on a private Xvfb screen
with a session bus and a tray host: bench/desktop.py's Desktop), with the same
settings as bench/engine.py's data home (context, threads, flash attention,
greedy, repeat penalty 1.0) and ``max_tokens`` = --tokens. Each round starts a
new chat with Ctrl+N, types the prompt with xdotool and presses Enter, like a
person. The page stamps every batch of the reply as it lands in the DOM
(``performance.now()`` with the tokens generated so far; web/app.js), and the
bench reads those stamps back through the "stream_times" probe:

    popup decode rate = (tokens at the last batch - tokens at the first batch)
                        / (time of the last batch - time of the first batch)

The raw side is bench/raw_llama.py in a process of its own, while the app sits
idle with its model loaded, told to make as many tokens as the popup's reply
had, after a prompt of as many tokens as the engine's: its rate is the token
lines timed from outside, as in bench/engine.py. The sides alternate which goes
first; the ratio is the median of the per-round ratios, with the CPUs other
processes kept busy during each run. Exit 0 whatever it measures; 2 without a
model file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import engine as eb  # noqa: E402  (bench/engine.py)
from cpuwatch import CpuWatch  # noqa: E402
from desktop import Desktop, RunningApp  # noqa: E402  (bench/desktop.py)

# One line (Enter sends), so xdotool can type it; the base model counts on.
PROMPT = "Count from 1 to 2000, separated by commas: 1, 2, 3, 4, 5,"
TARGET = 0.97


#: How often the bench asks the page whether the reply has ended. The page stamps
#: every batch itself; asking is a round trip through the core, the popup process
#: and WebKit, and asking every 20 ms took ~0.2 of the 2 CPUs llama.cpp decodes on
#: (a person's popup is asked nothing while it streams).
POLL_S = 0.5


def finished(app: RunningApp, known: set[str]) -> dict[str, Any]:
    """The stamps of the newest reply once its final message has arrived."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(POLL_S)
        times = app.probe("stream_times") or {}
        for rid, t in times.items():
            if rid not in known and t.get("done") is not None:
                known.add(rid)
                return t
    raise RuntimeError("timed out waiting for the reply")


def xdotool(app: RunningApp, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=app.desk.env, check=True, timeout=30)


def popup_round(app: RunningApp, known: set[str]) -> dict[str, Any]:
    watch = CpuWatch()
    xdotool(app, "key", "--clearmodifiers", "ctrl+n")
    time.sleep(0.3)  # the new chat's event reaches the page before the typing starts
    xdotool(app, "type", "--delay", "10", PROMPT)
    xdotool(app, "key", "--clearmodifiers", "Return")
    t = finished(app, known)
    others = watch.others()
    stats = t.get("stats") or {}
    out: dict[str, Any] = {"batches": t.get("batches"), "other_cpus": others,
                           "prompt_tokens": stats.get("prompt_tokens"),
                           "completion_tokens": stats.get("completion_tokens"),
                           "internal_decode_tok_s": stats.get("decode_tok_s")}
    span = (t.get("last") or 0) - t["first"]
    tokens = (t.get("lastTokens") or 0) - (t.get("firstTokens") or 0)
    if span > 0 and tokens > 0:
        out["decode_tok_s"] = tokens / (span / 1e3)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    eb.chat_bench_args(ap, ctx=4096)
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--json", type=Path, metavar="FILE")
    args = ap.parse_args(argv)
    model = eb.chosen_model(args)
    if model is None:
        return 2
    model = model.resolve()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rmm-popup-bench-") as tmp:
        home = Path(tmp) / "home"
        _name, text = eb.make_home(home, model, args)
        (home / "config.toml").write_text(
            text + f"max_tokens = {args.tokens}\n",
            encoding="utf-8")
        for sub in ("plugins", "prompts", "chats", "logs"):
            (home / sub).mkdir(exist_ok=True)
        desk = Desktop()
        app = None
        try:
            app = RunningApp(desk, home)
            app.wait_ready()
            app.request({"cmd": "show"})
            Desktop._wait(lambda: app.probe("focus") == "input", 20, "the input to take focus")
            known: set[str] = set()
            popup_round(app, known)  # untimed: loads the model, warms the page
            bench = eb.Bench(args, None, model, model.name, dict(desk.env), Path(tmp), None)
            for rnd in range(args.rounds):
                popup_first = rnd % 2 == 0
                pair: dict[str, Any] = {"round": rnd, "popup_first": popup_first}
                for side in (("popup", "raw") if popup_first else ("raw", "popup")):
                    if side == "popup":
                        pair["popup"] = popup_round(app, known)
                        continue
                    # The raw side makes what the popup's reply made (this round's,
                    # or the warm-up's figures before the first popup run).
                    ref = pair.get("popup") or (rows[-1]["popup"] if rows else
                                                {"prompt_tokens": 30, "completion_tokens": args.tokens})
                    run = bench.raw_run(PROMPT, ref["prompt_tokens"], ref["completion_tokens"])
                    pair["raw"] = {**eb.side_figures(run, "raw"), "other_cpus": run.others}
                p, r = pair["popup"].get("decode_tok_s"), pair["raw"].get("decode_tok_s")
                pair["ratio"] = p / r if p and r else None
                rows.append(pair)
                print(f"bench: round {rnd + 1}/{args.rounds}: popup {p and round(p, 2)} tok/s "
                      f"({pair['popup'].get('batches')} batches, "
                      f"{pair['popup'].get('completion_tokens')} tokens), raw "
                      f"{r and round(r, 2)} tok/s, others {pair['popup'].get('other_cpus')}/"
                      f"{pair['raw'].get('other_cpus')} CPUs", file=sys.stderr, flush=True)
        finally:
            if app is not None:
                app.close()
            desk.close()
    ratios = [p["ratio"] for p in rows if p.get("ratio")]
    pop = [p["popup"].get("decode_tok_s") for p in rows if p["popup"].get("decode_tok_s")]
    raw = [p["raw"].get("decode_tok_s") for p in rows if p["raw"].get("decode_tok_s")]
    others = [x for p in rows for x in (p["popup"].get("other_cpus"), p["raw"].get("other_cpus"))
              if x is not None]
    med = statistics.median(ratios) if ratios else None
    print(f"# Popup-path decode vs raw llama.cpp ({model.name}, {args.threads} threads, ctx "
          f"{args.ctx}, flash attention {args.flash_attn}, greedy, repeat penalty 1.0)\n")
    print("| what | popup (in the page) | raw loop | ratio (median of pairs, min-max) | target "
          "| others' CPU |\n|---|---|---|---|---|---|")
    if med is not None:
        print(f"| decode, {args.tokens}-token reply, {len(ratios)} rounds | "
              f"{statistics.median(pop):.1f} tok/s | {statistics.median(raw):.1f} tok/s | "
              f"{med:.3f} ({min(ratios):.3f}-{max(ratios):.3f}) | ≥ {TARGET} "
              f"{'met' if med >= TARGET else 'missed'} | "
              f"{min(others):.2f}-{max(others):.2f} |")
    else:
        print("| decode | no figures: see stderr | | | | |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratio": med}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
