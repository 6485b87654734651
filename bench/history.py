"""Chat history at size: a generated history of 10,000 chats and 200,000 messages,
the same chats in both backends in one run, timed as a person meets them.

    python bench/history.py [--quick] [--chats N] [--json PATH]

Rows, for jsonl and sqlite:
- `rmm-tray chats search WORD`, the whole command (a new process: Python start-up,
  plugins, the search, the printing), median of a few runs; target <= 100 ms for
  SQLite. WORD is planted in 3 chats.
- search in process (what the popup's core does for a keystroke), cold (a backend
  just opened) and warm (the next keystroke); target <= 100 ms with SQLite.
- first page of the list (50 chats) in process: the very first list (JSONL builds
  its summaries index then), cold (a backend just opened) and warm; target <= 50 ms.
- `rmm-tray chats list --limit 50`, the whole command.
- the popup's History view (a real window under Xvfb, SQLite): from a key typed
  into its search box (xdotool) until the page shows the answer to that query
  (read back through the page's probe, so the figure includes the polling):
  median and p95 over every prefix of WORD, a few rounds; target <= 100 ms.
  `--no-popup` skips it (no Xvfb).
- a durable append of a message (fsync / a committed FULL transaction) to a chat
  of the big history: median and p99 of 200.
The history is written straight in each backend's storage format (200,000 fsynced
appends would take longer than the rest together); the backends then read it as
they read their own. The CPU share other processes took during the run is printed.
The commands run with the app's bytecode cached, as a person's app has it after
its first start (bench/bytecode.py), after one warm-up run.
`--quick` makes 1,000 chats (the README figures are the full size).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bytecode  # noqa: E402  (bench/bytecode.py)
from cpuwatch import CpuWatch  # noqa: E402

from rmm_tray import ChatMessage  # noqa: E402
from rmm_tray.plugins.history_jsonl import JsonlHistory  # noqa: E402
from rmm_tray.plugins.history_sqlite import DB_NAME, SqliteHistory  # noqa: E402

PER_CHAT = 20
WORD = "quetzalcoatl"  # in 3 chats only
TARGETS = {"search": 0.100, "list": 0.050}


def vocabulary(rng: random.Random, n: int = 3000) -> list[str]:
    letters = "abcdefghijklmnoprstuvwy"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(n)]


def generate(chats: int, seed: int = 7) -> list[dict[str, Any]]:
    """The chats in the common export form, deterministic for a seed."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    planted = set(rng.sample(range(chats), 3))
    out = []
    t0 = 1.7e9
    for c in range(chats):
        created = t0 + c * 600.0
        messages = []
        parent = None
        for i in range(PER_CHAT):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
            if c in planted and i == PER_CHAT - 3:
                text += f" {WORD} said the reply"
            mid = f"m{c}-{i}"
            messages.append({"id": mid, "parent": parent, "role": "user" if i % 2 == 0 else "assistant",
                             "content": text, "created": created + i * 5.0, "model": None,
                             "interrupted": False, "stats": None})
            parent = mid
        out.append({"id": f"20240101-000000-{c:06x}", "title": messages[0]["content"][:60],
                    "created": created, "model": "gemma-3-270m-q4_k_m.gguf", "source": "popup",
                    "messages": messages})
    return out


def write_jsonl(home: Path, chats: list[dict[str, Any]]) -> None:
    folder = home / "chats"
    folder.mkdir(parents=True, exist_ok=True)
    for chat in chats:
        lines = [{"type": "chat", "id": chat["id"], "title": chat["title"], "created": chat["created"],
                  "model": chat["model"], "source": chat["source"]}]
        for m in chat["messages"]:
            record = {"type": "message", "role": m["role"], "content": m["content"], "id": m["id"],
                      "created": m["created"]}
            if m["parent"] is None:
                record["parent"] = None
            lines.append(record)
        (folder / f"{chat['id']}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")


def write_sqlite(home: Path, chats: list[dict[str, Any]]) -> None:
    SqliteHistory(home / DB_NAME).list_chats()  # the backend makes its own schema
    db = sqlite3.connect(home / DB_NAME, isolation_level=None)
    db.execute("BEGIN")
    seq = 0
    for n, chat in enumerate(chats, 1):
        last = chat["messages"][-1]
        db.execute("INSERT INTO chats (rowid, id, title, created, updated, model, source, current, shown)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (n, chat["id"], chat["title"], chat["created"], last["created"], chat["model"],
                    chat["source"], last["id"], len(chat["messages"])))
        db.execute("INSERT INTO search (rowid, body, chat_id, message_id) VALUES (?, ?, ?, '')",
                   (-n, chat["title"], chat["id"]))
        for depth, m in enumerate(chat["messages"], 1):
            seq += 1
            db.execute("INSERT INTO messages (seq, chat_id, id, parent, depth, role, content, created)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (seq, chat["id"], m["id"], m["parent"], depth, m["role"], m["content"], m["created"]))
            db.execute("INSERT INTO search (rowid, body, chat_id, message_id) VALUES (?, ?, ?, ?)",
                       (seq, m["content"], chat["id"], m["id"]))
    db.execute("COMMIT")
    db.close()


def open_backend(home: Path, name: str) -> Any:
    return SqliteHistory(home / DB_NAME) if name == "sqlite" else JsonlHistory(home / "chats")


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def command(home: Path, *args: str, reps: int) -> float:
    env = {**bytecode.cached(), "RMM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "rmm_tray", *args], env=env, capture_output=True,
                   timeout=600)  # warm-up: the files the command reads are in the page cache
    times: list[float] = []
    for _ in range(reps):
        if times and times[0] > 5:
            break  # one run of a command this slow says enough
        t = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "rmm_tray", *args], env=env, capture_output=True,
                             text=True, timeout=600)
        times.append(time.perf_counter() - t)
        if run.returncode != 0:
            raise RuntimeError(f"rmm-tray {' '.join(args)}: {run.stderr.strip()}")
    return statistics.median(times)


def measure(home: Path, name: str, reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    b = open_backend(home, name)
    out["search_cold_s"], hits = timed(lambda: b.search(WORD))
    assert len(hits) == 3, f"{name}: found {len(hits)} chats with the planted word"
    out["search_warm_s"] = statistics.median(timed(lambda: b.search(WORD[: 4 + i]))[0] for i in range(5))
    b.close()
    b = open_backend(home, name)
    out["list_first_s"], _ = timed(lambda: b.list_recent(50))  # jsonl: builds chats/.index.json
    b.close()
    b = open_backend(home, name)  # as a restarted app opens it
    out["list_cold_s"], page = timed(lambda: b.list_recent(50))
    out["list_warm_s"] = statistics.median(timed(lambda: b.list_recent(50))[0] for _ in range(5))
    chat_id = page[0].id
    appends = []
    for i in range(200):
        m = ChatMessage("user" if i % 2 == 0 else "assistant", f"appended message {i} " * 8)
        appends.append(timed(lambda: b.append_message(chat_id, m))[0])
    appends.sort()
    out["append_median_s"] = statistics.median(appends)
    out["append_p99_s"] = appends[int(len(appends) * 0.99) - 1]
    b.close()
    out["cmd_search_s"] = command(home, "chats", "search", WORD, reps=reps)
    out["cmd_list_s"] = command(home, "chats", "list", "--limit", "50", reps=reps)
    return out


def popup_search(home: Path, rounds: int) -> list[float]:
    """Seconds from each key typed into the History view's search to its answer
    on the page, typing WORD letter by letter, ``rounds`` times."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from desktop_helpers import RunningApp, Screen, wait_for

    screen = Screen()
    times: list[float] = []
    try:
        app = RunningApp(screen, home, "--no-tray", "--no-hotkey")
        try:
            app.cli("show")
            wait_for(screen.visible_popups, 15, "the popup")
            wait_for(lambda: app.probe("focus") is not None, 15, "the page to take the focus")
            view = lambda: app.probe("history")["view"]  # noqa: E731
            screen.key("ctrl+h")
            wait_for(lambda: view()["shown"] and view()["answered"] == "", 30, "the History view")
            for _ in range(rounds):
                for n in range(1, len(WORD) + 1):
                    start = time.perf_counter()
                    screen.run("xdotool", "type", "--delay", "0", WORD[n - 1])
                    while view()["answered"] != WORD[:n]:
                        if time.perf_counter() - start > 20:
                            raise RuntimeError(f"no answer to {WORD[:n]!r} within 20 s")
                    times.append(time.perf_counter() - start)
                rows = view()["rows"]
                assert len(rows) == 3, f"the view shows {len(rows)} chats for {WORD!r}"
                screen.key("ctrl+a", "BackSpace")
                wait_for(lambda: view()["answered"] == "", 30, "the empty search")
        finally:
            app.close()
    finally:
        screen.close()
    return times


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 10 else f"{x:.1f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 chats instead of 10,000")
    p.add_argument("--chats", type=int, help="this many chats (20 messages each)")
    p.add_argument("--reps", type=int, default=3, help="runs of each whole command")
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--no-popup", action="store_true", help="skip the History view (needs Xvfb)")
    p.add_argument("--rounds", type=int, default=3, help="times WORD is typed into the view")
    args = p.parse_args(argv)
    n = args.chats or (1000 if args.quick else 10_000)
    watch = CpuWatch()
    chats = generate(n)
    results: dict[str, Any] = {"chats": n, "messages": n * PER_CHAT}
    with tempfile.TemporaryDirectory(prefix="rmm-history-bench-") as tmp:
        results["startup_s"] = command(Path(tmp), "--version", reps=args.reps)
        for name in ("jsonl", "sqlite"):
            home = Path(tmp) / name
            for sub in ("models", "chats", "plugins", "prompts", "logs"):
                (home / sub).mkdir(parents=True, exist_ok=True)
            (home / "config.toml").write_text(f'[history]\nbackend = "{name}"\n')
            (home / "state.json").write_text('{"starter_installed": "x"}\n')
            t, _ = timed(lambda: (write_jsonl if name == "jsonl" else write_sqlite)(home, chats))
            results[name] = measure(home, name, args.reps)
            results[name]["generate_s"] = t
        if not args.no_popup:
            results["popup_search_s"] = popup_search(Path(tmp) / "sqlite", args.rounds)
    others = watch.others()
    print(f"chat history: {n:,} chats, {n * PER_CHAT:,} messages; both backends, same chats")
    print(f"{'':34}{'jsonl':>12}{'sqlite':>12}{'target':>10}  sqlite vs target")
    rows = [("chats search WORD (command)", "cmd_search_s", "search"),
            ("search, in process, cold", "search_cold_s", "search"),
            ("search, in process, warm", "search_warm_s", "search"),
            ("first list ever (jsonl: its index)", "list_first_s", None),
            ("first page of list, cold", "list_cold_s", "list"),
            ("first page of list, warm", "list_warm_s", "list"),
            ("chats list --limit 50 (command)", "cmd_list_s", None),
            ("durable append, median", "append_median_s", None),
            ("durable append, p99", "append_p99_s", None)]
    for label, key, target in rows:
        j, s = results["jsonl"][key], results["sqlite"][key]
        goal = TARGETS.get(target or "")
        verdict = f"{s / goal:.2f}x of target" if goal else ""
        print(f"{label:34}{ms(j):>12}{ms(s):>12}{ms(goal) if goal else '':>10}  {verdict}")
    ratio = results["jsonl"]["search_warm_s"] / results["sqlite"]["search_warm_s"]
    print(f"`rmm-tray --version` alone (the start-up every command pays): {ms(results['startup_s'])}")
    typed = sorted(results.get("popup_search_s") or [])
    if typed:
        med, p95 = statistics.median(typed), typed[max(0, int(len(typed) * 0.95) - 1)]
        print(f"History view, key -> answer shown (sqlite, {len(typed)} keys): median {ms(med)},"
              f" p95 {ms(p95)}; target {ms(TARGETS['search'])}: {med / TARGETS['search']:.2f}x")
    print(f"(jsonl/sqlite search, warm: {ratio:.0f}x;"
          f" writing the history: jsonl {results['jsonl']['generate_s']:.1f} s,"
          f" sqlite {results['sqlite']['generate_s']:.1f} s)")
    if others is not None:
        print(f"other processes kept {others:.2f} CPU(s) busy on average during the run")
    results["others_cpu"] = others
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
