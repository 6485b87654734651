"""`rmm-tray models search|pull`: remote catalogues (the Hugging Face Hub plugin)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from rmm_tray.cli.output import json_line, print_json, print_table
from rmm_tray.units import human_size

if TYPE_CHECKING:
    from rmm_tray.app import App
    from rmm_tray.models.downloads import Download


def add_actions(msub: Any) -> None:
    search = msub.add_parser("search", help="find GGUF models on the Hugging Face Hub")
    search.add_argument("query", nargs="?", default="")
    search.add_argument("--sort", choices=("downloads", "recent", "likes"), default="downloads")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=run_search)
    pull = msub.add_parser(
        "pull", help="download a model: REPO (the recommended quantization), REPO:QUANT or REPO:FILE")
    pull.add_argument("ref", metavar="REPO[:QUANT|:FILE]")
    pull.add_argument("--json", action="store_true", help="progress and result as JSON lines")
    pull.set_defaults(run=run_pull)
    files = msub.add_parser("files", help="a repository's GGUF files with sizes and fit on this machine")
    files.add_argument("repo")
    files.add_argument("--json", action="store_true")
    files.set_defaults(run=run_files)


#: What the Hub accepts as a repository id: OWNER/NAME, each of letters, digits,
#: '-', '_' and '.', neither starting nor ending with '-' or '.', no '--' or '..'.
_REPO_PART = r"(?!.*(?:--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"{_REPO_PART}/{_REPO_PART}")


def is_repo_id(text: str) -> bool:
    return _REPO_ID.fullmatch(text) is not None


def checked_repo_id(text: str) -> str:
    """``text`` when the Hub could have such a repository; else one line saying
    what a repository id looks like (the Hub client's own message is a paragraph)."""
    from rmm_tray.errors import RmmError, escaped

    if not is_repo_id(text):
        raise RmmError(f"'{escaped(text)}' is not a Hub repository id: OWNER/NAME, of letters, "
                       "digits, '-', '_' and '.'")
    return text


def run_search(args: argparse.Namespace) -> int:
    from rmm_tray.models.acquire import catalogue

    app = _app_class().open(safe_mode=args.safe_mode)
    found = catalogue(app).search(args.query, sort=args.sort, limit=args.limit)
    if args.json:
        print_json([r.__dict__ for r in found])
        return 0
    if not found:
        print(f"No GGUF models match '{args.query}'.")
        return 0
    print_table(["REPOSITORY", "DOWNLOADS", "LIKES", "UPDATED", ""], [
        [r.id, r.downloads, r.likes, r.last_modified[:10], "gated" if r.gated else ""] for r in found
    ])
    print("\nSee a repository's files: rmm-tray models files REPO; download: rmm-tray models pull REPO")
    return 0


def run_files(args: argparse.Namespace) -> int:
    from rmm_tray.models.acquire import catalogue, repo_files

    repo = checked_repo_id(args.repo)
    app = _app_class().open(safe_mode=args.safe_mode)
    details = catalogue(app).repo(repo)
    rows = repo_files(app, details)
    if args.json:
        print_json({"id": details.id, "summary": details.summary, "license": details.license,
                    "gated": details.gated, "files": rows})
        return 0
    print(details.id + ("  (gated)" if details.gated else ""))
    if details.license:
        print(f"License: {details.license}")
    if details.summary:
        print(details.summary)
    print()
    print_table(["FILE", "QUANT", "SIZE", "FIT", ""], [
        [r["name"] + (f" (+{r['parts'] - 1} parts)" if r["parts"] > 1 else ""), r["quantization"],
         human_size(r["size"]), r["fit"], "recommended" if r["recommended"] else ""] for r in rows
    ])
    return 0


def run_pull(args: argparse.Namespace) -> int:
    app = _app_class().open(safe_mode=args.safe_mode)
    from rmm_tray.models.acquire import pull_target

    source, file = pull_target(app, args.ref)
    downloads = app.downloads
    job = downloads.prepare(source, file)
    show = _JsonProgress() if args.json else _BarProgress(job.name)
    downloads.listeners.append(show)
    try:
        path = downloads.run(source, job)
    finally:
        show.close()
    name = path.relative_to(app.home.models).as_posix()
    if args.json:
        json_line({"type": "done", "name": name, "path": str(path), "size": job.size,
                    "repo": job.repo, "quantization": file.quantization})
    else:
        print(f"downloaded {name} ({human_size(job.size)}, sha256 verified)")
    return 0


class _JsonProgress:
    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, job: "Download") -> None:
        now = time.monotonic()
        if job.state == "downloading" and now - self.last < 0.5:
            return
        self.last = now
        print(json.dumps({"type": "progress", **job.to_dict()}), flush=True)

    def close(self) -> None:
        pass


class _BarProgress:
    """A one-line bar on stderr when it is a terminal; a line now and then otherwise."""

    WIDTH = 30

    def __init__(self, name: str) -> None:
        self.name = name
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.drawn = False

    def __call__(self, job: "Download") -> None:
        now = time.monotonic()
        if job.state == "downloading" and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        frac = job.done / job.size if job.size else 0.0
        filled = int(frac * self.WIDTH)
        eta = f" ETA {_eta(job.eta_s)}" if job.eta_s is not None else ""
        rate = f" {human_size(int(job.rate))}/s" if job.rate else ""
        line = (f"{self.name} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {frac:4.0%} "
                f"{human_size(job.done)}/{human_size(job.size)}{rate}{eta} {job.state}")
        if self.tty:
            print("\r" + line.ljust(100)[:100], end="", file=sys.stderr, flush=True)
            self.drawn = True
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.drawn:
            print(file=sys.stderr)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _app_class() -> "type[App]":
    # The App (config, plugins, history) only when a command runs: `--help`
    # builds every command's parser and must not pay for it.
    from rmm_tray.app import App

    return App
