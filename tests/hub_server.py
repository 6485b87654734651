"""A loopback stand-in for the Hugging Face Hub, for tests and benchmarks.

It speaks the part of the Hub's HTTP protocol that ``huggingface_hub`` (2.x, httpx2) uses to search,
inspect and download model repos, so the real client can be pointed at it with ``endpoint=hub.url`` or
``HF_ENDPOINT``. Faults (broken transfers, corrupted bodies, lying sizes, slow links) can be switched on
from the test thread while the server runs.

    with FakeHub() as hub:
        hub.add_repo("owner/tiny-GGUF", {"tiny.Q4_K_M.gguf": b"GGUF..."}, license="mit")
        HfApi(endpoint=hub.url).model_info("owner/tiny-GGUF", files_metadata=True)

Run by itself it serves the given files until killed and prints its URL:

    python tests/hub_server.py --repo owner/name=/path/to/model.gguf [--repo ...] [--port 0]

Standard library only, so a benchmark can run it with any interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["FakeHub", "RecordedRequest"]

_CHUNK = 256 * 1024
_BURST_S = 0.05
# Flip one byte per stride so a corrupted body stays wrong whatever range a resumed GET asks for.
_CORRUPT_STRIDE = 64 * 1024


class RecordedRequest(NamedTuple):
    method: str
    path: str  # path with query string, as sent
    headers: dict[str, str]  # names lower-cased


# -- file contents and their hashes ---------------------------------------------------------------------

# Hashing a 250 MB model takes a second or two; cache across FakeHub instances, keyed so an edited file
# is hashed again.
_hash_cache: dict[tuple[Any, ...], str] = {}
_hash_lock = threading.Lock()


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class _File:
    name: str
    source: Path | bytes
    lfs: bool
    hashes: dict[tuple[Any, ...], str] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size

    def _hash(self, algo: str) -> str:
        if isinstance(self.source, bytes):
            cache, key, data_size = self.hashes, (algo,), len(self.source)
        else:
            st = self.source.stat()
            cache, data_size = _hash_cache, st.st_size
            key = (str(self.source.resolve()), st.st_size, st.st_mtime_ns, algo)
        with _hash_lock:
            cached = cache.get(key)
        if cached is None:
            h = hashlib.sha256() if algo == "sha256" else hashlib.sha1(b"blob %d\0" % data_size)
            for block in self.read(0, data_size):
                h.update(block)
            cached = h.hexdigest()
            with _hash_lock:
                cache[key] = cached
        return cached

    @property
    def sha256(self) -> str:
        return self._hash("sha256")

    @property
    def git_oid(self) -> str:
        """What git stores: the LFS pointer for LFS files, the content otherwise."""
        if self.lfs:
            return _git_blob_sha1(_lfs_pointer(self.sha256, self.size))
        return self._hash("git")

    def read(self, offset: int, length: int) -> Iterator[bytes]:
        if isinstance(self.source, bytes):
            for pos in range(offset, offset + length, _CHUNK):
                yield self.source[pos:min(pos + _CHUNK, offset + length)]
            return
        with open(self.source, "rb") as f:
            f.seek(offset)
            left = length
            while left > 0 and (block := f.read(min(_CHUNK, left))):
                left -= len(block)
                yield block


@dataclass
class _Repo:
    id: str
    files: dict[str, _File]
    sha: str
    license: str
    gated: bool
    downloads: int
    likes: int
    last_modified: str
    tags: list[str]


@dataclass
class _Faults:
    drop_times: int = 0
    drop_nbytes: int = 0
    drop_reset: bool = False
    corrupt: bool = False
    fake_size: int | None = None
    endless: bool = False


@dataclass
class _Plan:
    """What one GET body does, decided under the lock when the request starts."""
    drop_at: int | None = None
    reset: bool = False
    corrupt: bool = False


# An endless body still stops somewhere, so a client that never hangs up cannot fill the test's disk.
ENDLESS_CAP = 64 << 20


def _is_clean(path: str) -> bool:
    return not path.startswith("/") and all(part not in ("", ".", "..") for part in path.split("/"))


# -- the hub ----------------------------------------------------------------------------------------------

class FakeHub:
    """A Hugging Face Hub on 127.0.0.1 serving in-memory or on-disk repos, with fault injection."""

    token: str = "hf_fakehub_test_token_0123456789"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._faults: dict[tuple[str, str], _Faults] = {}
        self._requests: list[RecordedRequest] = []
        self._rate = 0
        self._redirect_lfs = False
        self._next_slot = 0.0
        self._generation = 0
        self._server = _Server((host, port), _Handler)
        self._server.hub = self
        self._thread: threading.Thread | None = None
        self.url = f"http://{host}:{self._server.server_address[1]}"

    # lifecycle

    def start(self) -> FakeHub:
        if self._thread is None:
            # A short poll keeps stop() (and so each test's teardown) quick.
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                            name="fake-hub", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # content

    def add_repo(self, repo_id: str, files: dict[str, Path | bytes], *, card: str = "", license: str = "",
                 gated: bool = False, downloads: int = 0, likes: int = 0,
                 last_modified: str = "2026-01-01T00:00:00.000Z", tags: list[str] | None = None) -> str:
        """Add (or replace) a model repo; returns its commit sha. ``.gguf`` files are LFS files. Names are
        kept verbatim, hostile ones included, because the client under test is the one that must refuse
        them."""
        entries = {name: _File(name, src if isinstance(src, bytes) else Path(src),
                               lfs=name.lower().endswith(".gguf"))
                   for name, src in files.items()}
        if (card or license) and "README.md" not in entries:
            front = f"---\nlicense: {license}\n---\n\n" if license else ""
            entries["README.md"] = _File("README.md", (front + card).encode(), lfs=False)
        all_tags = list(tags or [])
        if any(e.lfs for e in entries.values()) and "gguf" not in all_tags:
            all_tags.append("gguf")
        if license and f"license:{license}" not in all_tags:
            all_tags.append(f"license:{license}")
        with self._lock:
            # A new commit per (re)add, so a client that caches by commit sees replaced content.
            self._generation += 1
            sha = hashlib.sha1(f"{repo_id}\0{self._generation}".encode()).hexdigest()
            self._repos[repo_id] = _Repo(repo_id, entries, sha, license, gated, downloads, likes,
                                         last_modified, all_tags)
            for key in [k for k in self._faults if k[0] == repo_id]:
                del self._faults[key]
        return sha

    def commit_sha(self, repo_id: str) -> str:
        with self._lock:
            return self._repos[repo_id].sha

    # faults

    def _fault(self, repo_id: str, filename: str) -> _Faults:
        return self._faults.setdefault((repo_id, filename), _Faults())

    def drop_after(self, repo_id: str, filename: str, nbytes: int, times: int = 1, *,
                   reset: bool = False) -> None:
        """The next ``times`` GETs of the file announce the full length, send ``nbytes`` of body and hang
        up. ``reset=False`` closes cleanly (the client sees a short body); ``reset=True`` sends a TCP RST
        (the client sees a connection reset, which it may handle differently)."""
        with self._lock:
            f = self._fault(repo_id, filename)
            f.drop_times, f.drop_nbytes, f.drop_reset = times, nbytes, reset

    def corrupt(self, repo_id: str, filename: str, enabled: bool = True) -> None:
        """Flip bytes in the body (same length) while listings keep the true sha256."""
        with self._lock:
            self._fault(repo_id, filename).corrupt = enabled

    def fake_size(self, repo_id: str, filename: str, size: int | None) -> None:
        """Listings and headers claim ``size`` (None: the truth). A GET still sends the real bytes only,
        then hangs up if it promised more."""
        with self._lock:
            self._fault(repo_id, filename).fake_size = size

    def endless(self, repo_id: str, filename: str, enabled: bool = True) -> None:
        """GETs of the file answer 200 with no Content-Length (the body ends when the connection
        closes), ignore any Range, and after the file's bytes keep sending padding until the client
        hangs up (or ENDLESS_CAP bytes). Listings keep the true size."""
        with self._lock:
            self._fault(repo_id, filename).endless = enabled

    def redirect_lfs(self, enabled: bool = True) -> None:
        """Answer LFS files' resolve URLs with a 302 to a CDN path, as the real Hub does."""
        with self._lock:
            self._redirect_lfs = enabled

    def throttle(self, bytes_per_second: int) -> None:
        """Rate limit shared by all file bodies in flight; 0 turns it off."""
        with self._lock:
            self._rate = max(0, int(bytes_per_second))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rate = 0

    # observation

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # used by the handler

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _repo(self, repo_id: str) -> _Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def _claimed_size(self, repo: _Repo, f: _File) -> int:
        with self._lock:
            fault = self._faults.get((repo.id, f.name))
            fake = fault.fake_size if fault else None
        return f.size if fake is None else fake

    def _plan(self, repo: _Repo, f: _File) -> _Plan:
        with self._lock:
            fault = self._faults.get((repo.id, f.name))
            if fault is None:
                return _Plan()
            plan = _Plan(corrupt=fault.corrupt)
            if fault.drop_times > 0:
                fault.drop_times -= 1
                plan.drop_at, plan.reset = fault.drop_nbytes, fault.drop_reset
            return plan

    def _is_endless(self, repo: _Repo, f: _File) -> bool:
        with self._lock:
            fault = self._faults.get((repo.id, f.name))
            return bool(fault and fault.endless)

    def _rate_now(self) -> int:
        with self._lock:
            return self._rate

    def _wait_for_bandwidth(self, nbytes: int) -> None:
        with self._lock:
            rate = self._rate
            if rate <= 0:
                return
            # One shared timeline, so parallel downloads split the rate instead of each getting it.
            # A link buffers a little: a sender held up for a moment (a slow reader)
            # may catch up by up to BURST_S, as it would over a real connection.
            now = time.monotonic()
            start = max(now - _BURST_S, self._next_slot)
            self._next_slot = start + nbytes / rate
            until = self._next_slot
        delay = until - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _list_models(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        with self._lock:
            repos = list(self._repos.values())
        search = (query.get("search") or [""])[0].lower()
        filters = query.get("filter", []) + query.get("filter[]", [])
        author = (query.get("author") or [""])[0]
        repos = [r for r in repos
                 if search in r.id.lower()
                 and all(t in r.tags for t in filters)
                 and (not author or r.id.split("/")[0] == author)]
        sort = (query.get("sort") or [""])[0]
        keys = {"downloads": lambda r: r.downloads, "likes": lambda r: r.likes,
                "lastModified": lambda r: r.last_modified, "createdAt": lambda r: r.last_modified,
                "trendingScore": lambda r: r.likes}
        if sort in keys:
            # The Hub sorts descending unless told direction=1.
            repos.sort(key=keys[sort], reverse=(query.get("direction") or ["-1"])[0] != "1")
        limit = (query.get("limit") or [""])[0]
        if limit.isdigit():
            repos = repos[:int(limit)]
        expand = query.get("expand", []) + query.get("expand[]", [])
        full = (query.get("full") or [""])[0].lower() == "true"
        out = []
        for r in repos:
            info = self._model_json(r, blobs=False, siblings=full)
            if expand:
                info = {k: v for k, v in info.items() if k in ("_id", "id") or k in expand}
            out.append(info)
        return out

    def _model_json(self, repo: _Repo, *, blobs: bool, siblings: bool = True) -> dict[str, Any]:
        has_gguf = any(f.lfs for f in repo.files.values())
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24],
            "id": repo.id, "modelId": repo.id, "author": repo.id.split("/")[0],
            "sha": repo.sha, "private": False, "disabled": False,
            "gated": "auto" if repo.gated else False,
            "downloads": repo.downloads, "likes": repo.likes,
            "lastModified": repo.last_modified, "createdAt": repo.last_modified,
            "tags": list(repo.tags),
        }
        if has_gguf:
            info["library_name"] = "gguf"
        if repo.license:
            info["cardData"] = {"license": repo.license}
        if siblings:
            info["siblings"] = [self._sibling(repo, f, blobs) for f in repo.files.values()]
        return info

    def _sibling(self, repo: _Repo, f: _File, blobs: bool) -> dict[str, Any]:
        if not blobs:
            return {"rfilename": f.name}
        size = self._claimed_size(repo, f)
        entry: dict[str, Any] = {"rfilename": f.name, "size": size, "blobId": f.git_oid}
        if f.lfs:
            # The Hub names the hash "sha256" here but "oid" in tree listings; the client reads each.
            entry["lfs"] = {"sha256": f.sha256, "size": size,
                            "pointerSize": len(_lfs_pointer(f.sha256, f.size))}
        return entry

    def _tree_entry(self, repo: _Repo, f: _File) -> dict[str, Any]:
        size = self._claimed_size(repo, f)
        entry: dict[str, Any] = {"type": "file", "oid": f.git_oid, "size": size, "path": f.name}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": size,
                            "pointerSize": len(_lfs_pointer(f.sha256, f.size))}
        return entry

    def _tree(self, repo: _Repo, prefix: str, recursive: bool) -> list[dict[str, Any]] | None:
        prefix = prefix.strip("/")
        entries: dict[str, dict[str, Any]] = {}
        for f in repo.files.values():
            if not _is_clean(f.name):
                # Hostile names have no sensible folder; list them verbatim at the root only.
                if not prefix:
                    entries[f.name] = self._tree_entry(repo, f)
                continue
            if prefix and not f.name.startswith(prefix + "/"):
                continue
            rest = f.name[len(prefix) + 1:] if prefix else f.name
            parts = rest.split("/")
            base = prefix + "/" if prefix else ""
            for depth in range(1, len(parts)):
                if depth > 1 and not recursive:
                    break
                folder = base + "/".join(parts[:depth])
                entries.setdefault(folder, {"type": "directory", "path": folder, "size": 0,
                                            "oid": hashlib.sha1(f"{repo.sha}:{folder}".encode()).hexdigest()})
            if recursive or len(parts) == 1:
                entries[f.name] = self._tree_entry(repo, f)
        if prefix and not entries:
            return None
        return [entries[k] for k in sorted(entries)]

    def _paths_info(self, repo: _Repo, paths: list[str]) -> list[dict[str, Any]]:
        out = []
        for p in paths:
            if p in repo.files:
                out.append(self._tree_entry(repo, repo.files[p]))
            elif _is_clean(p) and any(n.startswith(p + "/") for n in repo.files):
                out.append({"type": "directory", "path": p, "size": 0,
                            "oid": hashlib.sha1(f"{repo.sha}:{p}".encode()).hexdigest()})
        return out


# -- HTTP ---------------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    hub: FakeHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-body (killed downloads, cancelled tests) are expected here.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _HubError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub; every response carries a Content-Length
    server: _Server
    server_version = "FakeHub/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # routing

    def _dispatch(self, method: str) -> None:
        hub = self.server.hub
        hub._record(RecordedRequest(method, self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = b""
        if method == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        split = urlsplit(self.path)
        # Split before decoding: the client percent-encodes "/" inside revisions and tree paths.
        segs = split.path.split("/")[1:]
        query = parse_qs(split.query, keep_blank_values=True)
        try:
            if segs[:2] == ["api", "models"]:
                self._api(method, segs[2:], query, body)
            elif segs[0] == "_cdn" and len(segs) > 3 and method in ("GET", "HEAD"):
                # Where a redirected LFS download lands: signed, so no token is asked for.
                self._resolve(method, f"{unquote(segs[1])}/{unquote(segs[2])}", "main",
                              unquote("/".join(segs[3:])), via_cdn=True)
            elif "resolve" in segs[1:3] and method in ("GET", "HEAD"):
                i = segs.index("resolve", 1)
                repo_id = "/".join(unquote(s) for s in segs[:i])
                rev = unquote(segs[i + 1]) if len(segs) > i + 1 else ""
                self._resolve(method, repo_id, rev, unquote("/".join(segs[i + 2:])))
            else:
                raise _HubError(404, "", "Not Found")
        except _HubError as e:
            self._send_error(method, e)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _api(self, method: str, segs: list[str], query: dict[str, list[str]], body: bytes) -> None:
        hub = self.server.hub
        if not segs or segs == [""]:
            if method != "GET":
                raise _HubError(405, "", "Method Not Allowed")
            return self._send_json(method, hub._list_models(query))
        # owner/name, or a bare legacy name such as "gpt2"
        n = 2 if len(segs) >= 2 and segs[1] not in ("revision", "tree", "paths-info") else 1
        repo = self._find_repo(unquote("/".join(segs[:n])))
        rest = segs[n:]
        if method == "GET" and not rest:
            return self._send_json(method, hub._model_json(repo, blobs=_truthy(query, "blobs")))
        if method == "GET" and len(rest) == 2 and rest[0] == "revision":
            self._check_rev(repo, unquote(rest[1]))
            return self._send_json(method, hub._model_json(repo, blobs=_truthy(query, "blobs")))
        if method == "GET" and len(rest) >= 2 and rest[0] == "tree":
            self._check_rev(repo, unquote(rest[1]))
            listing = hub._tree(repo, unquote("/".join(rest[2:])), _truthy(query, "recursive"))
            if listing is None:
                raise _HubError(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": repo.sha})
            return self._send_json(method, listing)
        if method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
            self._check_rev(repo, unquote(rest[1]))
            if "json" in (self.headers.get("Content-Type") or ""):
                paths = json.loads(body or b"{}").get("paths", [])
            else:
                form = parse_qs(body.decode(), keep_blank_values=True)
                paths = form.get("paths", []) + form.get("paths[]", [])
            return self._send_json(method, hub._paths_info(repo, list(paths)))
        raise _HubError(404, "", "Not Found")

    def _find_repo(self, repo_id: str) -> _Repo:
        repo = self.server.hub._repo(repo_id)
        if repo is None:
            raise _HubError(404, "RepoNotFound", "Repository not found")
        return repo

    def _check_rev(self, repo: _Repo, rev: str) -> None:
        if rev not in ("main", repo.sha):
            raise _HubError(404, "RevisionNotFound", "Invalid rev id: " + rev)

    def _check_access(self, repo: _Repo, filename: str) -> None:
        # The model card of a gated repo stays public on the Hub; only the other files are gated.
        if not repo.gated or filename == "README.md":
            return
        auth = self.headers.get("Authorization")
        if auth == f"Bearer {self.server.hub.token}":
            return
        if auth is None:
            raise _HubError(401, "GatedRepo",
                            "Access to model " + repo.id + " is restricted. You must have access to it "
                            "and be authenticated to access it. Please log in.")
        raise _HubError(403, "GatedRepo", "Access to model " + repo.id
                        + " is restricted and you are not in the authorized list.")

    # file downloads

    def _resolve(self, method: str, repo_id: str, rev: str, filename: str, via_cdn: bool = False) -> None:
        hub = self.server.hub
        repo = self._find_repo(repo_id)
        self._check_rev(repo, rev)
        if not via_cdn:
            self._check_access(repo, filename)
        f = repo.files.get(filename)
        if f is None:
            raise _HubError(404, "EntryNotFound", f"{filename} does not exist on \"{rev}\"",
                            {"X-Repo-Commit": repo.sha})
        size = hub._claimed_size(repo, f)
        if f.lfs and hub._redirect_lfs and not via_cdn:
            # The real Hub answers an LFS file with a redirect to its CDN, keeping
            # the size and hash in the redirect's own headers.
            self.send_response(302)
            self.send_header("Location", f"/_cdn/{repo_id}/{quote(filename)}?X-Amz-Signature=fake")
            self.send_header("Content-Length", "0")
            self.send_header("X-Repo-Commit", repo.sha)
            self.send_header("X-Linked-Etag", f'"{f.sha256}"')
            self.send_header("X-Linked-Size", str(size))
            self.end_headers()
            return
        if method == "GET" and hub._is_endless(repo, f):
            return self._send_endless(repo, f)
        start, end = 0, size - 1
        status = 200
        rng = _parse_range(self.headers.get("Range"), size)
        if rng == "unsatisfiable":
            raise _HubError(416, "", "Range Not Satisfiable", {"Content-Range": f"bytes */{size}"})
        if rng is not None:
            start, end = rng
            status = 206
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("ETag", f'"{f.git_oid}"')
        if f.lfs:
            self.send_header("X-Linked-Etag", f'"{f.sha256}"')
            self.send_header("X-Linked-Size", str(size))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if method == "GET" and length:
            self._send_body(repo, f, start, length)

    def _send_body(self, repo: _Repo, f: _File, start: int, length: int) -> None:
        hub = self.server.hub
        plan = hub._plan(repo, f)
        # A faked size can promise more than the file holds; send what exists.
        real = max(0, min(length, f.size - start))
        todo = real if plan.drop_at is None else min(real, plan.drop_at)
        fast = plan.drop_at is None and not plan.corrupt and hub._rate_now() == 0
        if fast and isinstance(f.source, Path) and todo > 0:
            # Zero-copy, so a throughput benchmark measures the client rather than this server.
            with open(f.source, "rb") as fh:
                self.connection.sendfile(fh, offset=start, count=todo)
        else:
            pos = start
            for block in f.read(start, todo):
                if plan.corrupt:
                    block = _flip(block, pos, f.size)
                # Smaller writes under a throttle so a progress bar moves smoothly.
                step = max(1024, min(len(block), hub._rate_now() // 10)) if hub._rate_now() else len(block)
                for i in range(0, len(block), step):
                    piece = block[i:i + step]
                    hub._wait_for_bandwidth(len(piece))
                    self.wfile.write(piece)
                pos += len(block)
        if todo < length:
            self._hang_up(plan.reset)

    def _send_endless(self, repo: _Repo, f: _File) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")  # no Content-Length: the body runs until the close
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("ETag", f'"{f.git_oid}"')
        self.end_headers()
        self.close_connection = True
        sent = 0
        for block in f.read(0, f.size):
            self.wfile.write(block)
            sent += len(block)
        padding = bytes(_CHUNK)
        while sent < ENDLESS_CAP:
            self.wfile.write(padding)  # raises once the client hangs up
            sent += len(padding)

    def _hang_up(self, reset: bool) -> None:
        self.close_connection = True
        if reset:
            # SO_LINGER 0 turns close() into a TCP RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    # responses

    def _send_json(self, method: str, data: Any) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def _send_error(self, method: str, e: _HubError) -> None:
        payload = json.dumps({"error": e.message}).encode()
        self.send_response(e.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        if e.code:
            self.send_header("X-Error-Code", e.code)
        # Messages can quote a hostile file name: keep the header printable ASCII, one line.
        self.send_header("X-Error-Message", "".join(c if " " <= c <= "~" else "?" for c in e.message))
        for k, v in e.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)


def _truthy(query: dict[str, list[str]], key: str) -> bool:
    return (query.get(key) or [""])[0].lower() in ("1", "true")


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive, "unsatisfiable", or None to serve the whole file."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes="):].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size > 0 else "unsatisfiable"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _flip(block: bytes, pos: int, size: int) -> bytes:
    target = min(size // 2, _CORRUPT_STRIDE // 2)
    out = bytearray(block)
    first = pos + (target - pos) % _CORRUPT_STRIDE
    for i in range(first - pos, len(out), _CORRUPT_STRIDE):
        out[i] ^= 0xFF
    return bytes(out)


# -- command line -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve files as Hugging Face Hub model repos on loopback.")
    ap.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME=PATH",
                    help="serve PATH as a file of repo OWNER/NAME (repeat to add files or repos)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--throttle", type=int, default=0, metavar="BYTES_PER_SECOND")
    args = ap.parse_args(argv)
    repos: dict[str, dict[str, Path | bytes]] = {}
    for spec in args.repo:
        repo_id, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file():
            ap.error(f"--repo wants OWNER/NAME=PATH to an existing file, got {spec!r}")
        repos.setdefault(repo_id, {})[Path(path).name] = Path(path)
    hub = FakeHub(port=args.port)
    for repo_id, files in repos.items():
        hub.add_repo(repo_id, files)
    hub.throttle(args.throttle)
    with hub:
        print(hub.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
