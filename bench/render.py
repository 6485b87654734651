"""Per-batch cost of showing a streaming reply, before and after incremental
rendering, printed as a Markdown table.

    python bench/render.py [--quick] [--chars N] [--batch-chars N] [--json FILE]

The reply is ~23k characters of typical model output (headings, prose, fenced
code with blank lines, tables), fed in batches of a few characters (~1.5 tokens:
what arrives in the popup's 30 ms batch interval at ~47 tok/s).

- old: each batch re-renders the whole reply so far (``render_markdown``) and
  sends all of its HTML; measured at points through the reply (median of a few
  runs at each point).
- new: ``StreamRenderer.update`` renders the blocks completed since the last
  batch and the unfinished tail; every batch is timed, and the median and worst
  batch in each tenth of the reply are shown.

Bytes are the HTML a batch sends over IPC.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rmm_tray.desktop.render import StreamRenderer, render_markdown  # noqa: E402


def reply(chars: int) -> str:
    parts: list[str] = []
    i = 0
    while sum(map(len, parts)) < chars:
        parts.append(f"## Step {i}\n\nHere is what step {i} does, with `inline code`, **bold** and a\n"
                     f"[link](https://example.com/{i}). A second sentence makes it a paragraph.\n")
        parts.append(f"```python\ndef step_{i}(items):\n    total = 0\n\n    for x in items:\n"
                     f"        total += x * {i}\n    return total\n```\n")
        parts.append("| input | output |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n")
        i += 1
    return "\n".join(parts)[:chars]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--chars", type=int, default=23_000)
    ap.add_argument("--batch-chars", type=int, default=6)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    text = reply(args.chars)
    cuts = list(range(args.batch_chars, len(text), args.batch_chars)) + [len(text)]
    tenths = 10
    reps = 2 if args.quick else 5

    render_markdown(text[:2000])  # warm up: markdown-it's and Pygments' first use imports

    # new: every batch, in order
    renderer = StreamRenderer()
    new_ms: list[float] = []
    new_bytes: list[int] = []
    for end in cuts:
        t = time.perf_counter()
        blocks, tail = renderer.update(text[:end])
        new_ms.append((time.perf_counter() - t) * 1000)
        new_bytes.append(len(blocks) + len(tail))

    rows = []
    for k in range(1, tenths + 1):
        lo, hi = (k - 1) * len(cuts) // tenths, k * len(cuts) // tenths
        end = cuts[hi - 1]
        old = []
        for _ in range(reps):
            t = time.perf_counter()
            html = render_markdown(text[:end])
            old.append((time.perf_counter() - t) * 1000)
        rows.append({"chars": end, "old_ms": statistics.median(old), "old_bytes": len(html),
                     "new_ms_median": statistics.median(new_ms[lo:hi]),
                     "new_ms_max": max(new_ms[lo:hi]), "new_bytes_max": max(new_bytes[lo:hi])})

    print(f"{len(text)} characters in {len(cuts)} batches of {args.batch_chars} characters\n")
    print("| reply so far | old: full re-render | old: bytes sent | new: median batch "
          "| new: worst batch | new: most bytes sent |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['chars']} | {r['old_ms']:.2f} ms | {r['old_bytes']} | {r['new_ms_median']:.3f} ms "
              f"| {r['new_ms_max']:.2f} ms | {r['new_bytes_max']} |")
    total_old = sum(r["old_ms"] for r in rows) / len(rows) * len(cuts)
    print(f"\nwhole reply: old ≈ {total_old / 1000:.1f} s of rendering (estimated from the points), "
          f"new = {sum(new_ms) / 1000:.2f} s measured")
    if args.json:
        args.json.write_text(json.dumps({"chars": len(text), "batches": len(cuts), "rows": rows,
                                         "new_total_s": sum(new_ms) / 1000}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
