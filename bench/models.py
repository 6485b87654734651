"""How long listing many local models takes, printed as a Markdown table.

    python bench/models.py [--count N] [--quick] [--json FILE]

The issue's target: ``rmm-tray models list --json`` for 1,000 local models, with
their metadata, in 200 ms or less.

A throw-away data home gets N small but real GGUF files written with the
``gguf`` package, with the header keys a converted llama.cpp model has (general.*,
the architecture's shape, rope, tokenizer scalars, a chat template); one in ten
also carries a 32,000-string vocabulary with its scores and token types, since
real headers are megabytes of tokenizer arrays. A few are split models (three
parts each), listed as one entry. One of them is named like the starter model,
so that the CLI's first-start step has nothing to copy.

What is timed, each as the median of several runs:

1. ``models.store.list_models`` in this process: with the metadata cache off (every
   header parsed), building the cache (parsed, then written), and warm (the cache
   is read; no GGUF file is opened).
2. ``rmm-tray models list --json`` as a subprocess (Python and CLI start-up
   included), without a cache file (deleted before each run) and warm, against
   ``rmm-tray --version`` (the same start-up, listing nothing) and a bare
   ``python -c pass``.

The files were just written, so they are in the OS page cache either way: "cold"
here means no metadata cache, not a cold disk (dropping the page cache needs root).
The ratio column is figure / 200 ms target. Nothing fails: exit 0 whatever it
measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bytecode  # noqa: E402  (bench/bytecode.py)

from rmm_tray.models.starter import STARTER_FILE  # noqa: E402
from rmm_tray.models.store import list_models  # noqa: E402

TARGET_S = 0.200
ARCHS = ("llama", "qwen2", "gemma3", "mistral", "phi3")
QUANTS = ((15, "Q4_K_M"), (7, "Q8_0"), (18, "Q6_K"), (17, "Q5_K_M"), (1, "F16"), (30, "IQ4_XS"))


@dataclass(frozen=True)
class Plan:
    count: int
    reps: int
    cli_reps: int


FULL = Plan(count=1000, reps=7, cli_reps=7)
QUICK = Plan(count=60, reps=2, cli_reps=2)


@dataclass
class Row:
    what: str
    figure: float | None  # seconds
    target: float | None = TARGET_S

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.target:
            return None
        return self.figure / self.target

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "seconds": self.figure, "target_s": self.target,
                "ratio_to_target": self.ratio,
                "met": None if self.ratio is None else self.ratio <= 1.0}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


# -- the models -----------------------------------------------------------------


def write_gguf(path: Path, i: int, *, vocab: int = 0, split: tuple[int, int] | None = None) -> None:
    import gguf

    arch = ARCHS[i % len(ARCHS)]
    ftype, quant = QUANTS[i % len(QUANTS)]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_type("model")
    w.add_name(f"Bench Model {i}")
    w.add_basename(f"bench-model-{i}")
    w.add_finetune("instruct")
    w.add_size_label(f"{1 + i % 70}B")
    w.add_license("apache-2.0")
    w.add_tags(["text-generation", "chat"])
    w.add_languages(["en", "fr", "de"])
    w.add_block_count(32)
    w.add_context_length(8192 << (i % 3))
    w.add_embedding_length(4096)
    w.add_feed_forward_length(14336)
    w.add_head_count(32)
    w.add_head_count_kv(8)
    w.add_key_length(128)
    w.add_value_length(128)
    w.add_rope_dimension_count(128)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab or 32000)
    w.add_file_type(ftype)
    w.add_quantization_version(2)
    if split is not None:
        w.add_uint16("split.no", split[0])
        w.add_uint16("split.count", split[1])
        w.add_int32("split.tensors.count", 1)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("llama-bpe")
    if vocab:
        w.add_token_list([f"tok{n}" for n in range(vocab)])
        w.add_token_scores([0.0] * vocab)
        w.add_token_types([1] * vocab)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}" + f"{quant}")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_models(models_dir: Path, count: int) -> int:
    """``count`` entries in models/ (a split model counts once); returns the file count."""
    models_dir.mkdir(parents=True, exist_ok=True)
    files = 0
    for i in range(count):
        folder = models_dir / f"owner{i % 20}" / f"repo{i % 50}-GGUF"
        folder.mkdir(parents=True, exist_ok=True)
        quant = QUANTS[i % len(QUANTS)][1]
        if i == 0:
            write_gguf(models_dir / STARTER_FILE, i)
            files += 1
        elif i % 97 == 0:
            for part in (1, 2, 3):
                write_gguf(folder / f"big-{i}-{quant}-{part:05d}-of-00003.gguf", i, split=(part, 3))
            files += 3
        else:
            write_gguf(folder / f"model-{i}-{quant}.gguf", i, vocab=32000 if i % 10 == 0 else 0)
            files += 1
    return files


# -- timing ---------------------------------------------------------------------


def timed(fn: Callable[[], Any], reps: int, before: Callable[[], None] | None = None) -> list[float]:
    out = []
    for _ in range(reps):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def run(home: Path, plan: Plan, report: Report) -> None:
    models = home / "models"
    cache = home / "cache" / "models.json"
    started = time.perf_counter()
    files = make_models(models, plan.count)
    header_bytes = sum(p.stat().st_size for p in models.rglob("*.gguf"))
    report.details.update(models=plan.count, files=files, bytes_on_disk=header_bytes,
                          make_s=round(time.perf_counter() - started, 1))

    listed = list_models(models, use_cache=False)
    if len(listed) != plan.count or any(m.info is None for m in listed):
        bad = [m.name for m in listed if m.info is None][:3]
        report.notes.append(f"listed {len(listed)} of {plan.count} models; unread: {bad}")

    def drop_cache() -> None:
        cache.unlink(missing_ok=True)

    n = plan.count
    report.rows.append(Row(f"in process, {n} models, no metadata cache",
                           median(timed(lambda: list_models(models, use_cache=False), plan.reps))))
    report.rows.append(Row(f"in process, {n} models, building the cache",
                           median(timed(lambda: list_models(models), plan.reps, drop_cache))))
    list_models(models)
    report.rows.append(Row(f"in process, {n} models, warm cache",
                           median(timed(lambda: list_models(models), plan.reps))))

    env = {**bytecode.cached(), "RMM_HOME": str(home)}  # as a person's app has it after its first start
    env.pop("RMM_PLUGINS", None)
    cli = [sys.executable, "-m", "rmm_tray"]

    def command(*args: str) -> Callable[[], None]:
        def go() -> None:
            result = subprocess.run([*cli, *args] if args[0] != "-c" else [sys.executable, *args],
                                    capture_output=True, text=True, env=env, cwd=REPO)
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()[-300:]}")
            if args[:2] == ("models", "list"):
                count = len(json.loads(result.stdout))
                if count != n:
                    raise RuntimeError(f"models list --json printed {count} models, not {n}")
        return go

    report.rows.append(Row(f"`rmm-tray models list --json`, {n} models, no cache file",
                           median(timed(command("models", "list", "--json"), plan.cli_reps,
                                        drop_cache))))
    command("models", "list", "--json")()
    report.rows.append(Row(f"`rmm-tray models list --json`, {n} models, warm cache",
                           median(timed(command("models", "list", "--json"), plan.cli_reps))))
    report.rows.append(Row("`rmm-tray --version` (CLI start-up alone)",
                           median(timed(command("--version"), plan.cli_reps)), None))
    report.rows.append(Row("`python -c pass` (interpreter start-up)",
                           median(timed(command("-c", "pass"), plan.cli_reps)), None))
    report.details["cache_file_bytes"] = cache.stat().st_size if cache.exists() else None


def fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def render(report: Report) -> str:
    lines = ["| what | figure | ratio to target | target |", "|---|---|---|---|"]
    for r in report.rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        target = "—" if r.target is None else f"≤ {fmt(r.target)}" + (
            "" if r.ratio is None else (" (met)" if r.ratio <= 1 else " (missed)"))
        lines.append(f"| {r.what} | {fmt(r.figure)} | {ratio} | {target} |")
    d = report.details
    lines += ["", f"{d.get('models')} models in {d.get('files')} files "
              f"({d.get('bytes_on_disk', 0) / 1e6:.0f} MB of headers), written in {d.get('make_s')} s; "
              f"cache file {d.get('cache_file_bytes') or 0:,} bytes. Medians of the runs.",
              "", f"{platform.python_implementation()} {platform.python_version()} · "
              f"{platform.machine()} · {os.cpu_count()} CPUs", ""]
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few models, for a smoke test")
    ap.add_argument("--count", type=int, help="how many models (default 1000; --quick: 60)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.count:
        plan = Plan(args.count, plan.reps, plan.cli_reps)
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="rmm-bench-models-"))
    try:
        run(work / "home", plan, report)
    except Exception as exc:  # a broken step is reported, the table still prints
        report.notes.append(f"failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps({"rows": [r.to_dict() for r in report.rows],
                                         "notes": report.notes, "details": report.details},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
