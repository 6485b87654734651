"""The fake Hub in hub_server.py, checked against the real huggingface_hub client, so tests of the
downloader plugin exercise the same requests and errors a user's machine sees."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

hf = pytest.importorskip("huggingface_hub")

import httpx2  # noqa: E402
from hub_server import FakeHub  # noqa: E402
from huggingface_hub import HfApi, file_download, hf_hub_download, hf_hub_url  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

pytestmark = pytest.mark.integration

MODEL = bytes(range(256)) * 1200  # 300 KiB, not a multiple of any chunk size
SHA = hashlib.sha256(MODEL).hexdigest()
REPO = "lab/Tiny-Model-GGUF"
FILE = "tiny.Q4_K_M.gguf"


@pytest.fixture(autouse=True)
def hf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's cache or token, and never phone home."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    # huggingface_hub read the environment into constants when it was imported, before this fixture ran.
    for name, value in {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
                        "HF_XET_CACHE": str(home / "xet"), "HF_TOKEN_PATH": str(home / "token"),
                        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
                        "HF_HUB_DISABLE_TELEMETRY": True}.items():
        monkeypatch.setattr(hf.constants, name, value)
    # http_get sleeps a second before each retry; the drop test needs no real pause. Patch the module's
    # name only: the server's throttle sleeps through the real time module.
    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=lambda s: None))


@pytest.fixture()
def hub() -> Iterator[FakeHub]:
    with FakeHub() as h:
        h.add_repo(REPO, {FILE: MODEL, "tiny.Q8_0.gguf": MODEL[:1000]}, card="# Tiny", license="apache-2.0",
                   downloads=500, likes=3, last_modified="2026-02-01T00:00:00.000Z")
        h.add_repo("lab/Other-GGUF", {"other.gguf": b"GGUF" * 10}, downloads=900, likes=9)
        h.add_repo("lab/tiny-safetensors", {"model.safetensors": b"x" * 10}, downloads=10_000)
        h.add_repo("corp/Gated-GGUF", {"g.gguf": MODEL[:4096]}, gated=True)
        yield h


def test_list_models_search_filter_sort(hub: FakeHub) -> None:
    api = HfApi(endpoint=hub.url)
    found = list(api.list_models(search="tiny", filter="gguf", sort="downloads", limit=10))
    assert [m.id for m in found] == [REPO]
    by_downloads = [m.id for m in api.list_models(filter="gguf", sort="downloads")]
    assert by_downloads == ["lab/Other-GGUF", REPO, "corp/Gated-GGUF"]
    first = next(iter(api.list_models(filter="gguf", sort="likes", limit=1)))
    assert first.id == "lab/Other-GGUF" and first.likes == 9 and "gguf" in (first.tags or [])
    expanded = next(iter(api.list_models(search="gated", expand=["gated", "lastModified"])))
    assert expanded.gated == "auto" and expanded.last_modified is not None and expanded.downloads is None
    sent = [r.path for r in hub.requests if r.path.startswith("/api/models?")]
    assert any("search=tiny" in p and "filter=gguf" in p and "sort=downloads" in p for p in sent)


def test_model_info_siblings_carry_lfs_sha256(hub: FakeHub) -> None:
    info = HfApi(endpoint=hub.url).model_info(REPO, files_metadata=True)
    assert info.sha == hub.commit_sha(REPO) and info.card_data.license == "apache-2.0"
    sib = {s.rfilename: s for s in info.siblings}
    assert set(sib) == {FILE, "tiny.Q8_0.gguf", "README.md"}
    assert sib[FILE].size == len(MODEL) and sib[FILE].lfs.sha256 == SHA and sib["README.md"].lfs is None
    assert HfApi(endpoint=hub.url).model_info(REPO, revision=info.sha).sha == info.sha
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url).model_info(REPO, revision="nope")


def test_repo_tree_and_paths_info(hub: FakeHub) -> None:
    api = HfApi(endpoint=hub.url)
    tree = {e.path: e for e in api.list_repo_tree(REPO, recursive=True)}
    assert tree[FILE].lfs.sha256 == SHA and tree[FILE].size == len(MODEL)
    assert tree["README.md"].lfs is None and b"license: apache-2.0" in _get(hub, REPO, "README.md")
    [info] = api.get_paths_info(REPO, [FILE, "missing.gguf"])
    assert info.lfs.sha256 == SHA


def test_hostile_names_listed_verbatim(hub: FakeHub) -> None:
    names = ["../../evil.gguf", "/etc/evil.gguf", "sub/../../x.gguf", "ok/nested.gguf"]
    hub.add_repo("bad/Evil-GGUF", dict.fromkeys(names, b"GGUF"))
    api = HfApi(endpoint=hub.url)
    listed = {e.path for e in api.list_repo_tree("bad/Evil-GGUF", recursive=True)}
    assert set(names) <= listed
    assert {s.rfilename for s in api.model_info("bad/Evil-GGUF").siblings} == set(names)


def test_file_metadata_from_head(hub: FakeHub) -> None:
    meta = file_download.get_hf_file_metadata(hf_hub_url(REPO, FILE, endpoint=hub.url))
    assert (meta.size, meta.etag, meta.commit_hash) == (len(MODEL), SHA, hub.commit_sha(REPO))
    hub.fake_size(REPO, FILE, 50 * 10**12)
    meta = file_download.get_hf_file_metadata(hf_hub_url(REPO, FILE, endpoint=hub.url))
    assert meta.size == 50 * 10**12
    assert HfApi(endpoint=hub.url).model_info(REPO, files_metadata=True).siblings[0].lfs.size == 50 * 10**12


def test_http_get_resumes_with_range(hub: FakeHub) -> None:
    buf = io.BytesIO(MODEL[:100_000])
    buf.seek(0, io.SEEK_END)
    file_download.http_get(hf_hub_url(REPO, FILE, endpoint=hub.url), buf, resume_size=100_000,
                           expected_size=len(MODEL))
    assert buf.getvalue() == MODEL
    assert hub.requests[-1].headers["range"] == "bytes=100000-"


def test_broken_transfer_is_resumed_by_the_client(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    # http_get only counts bytes it has handed out in whole chunks (10 MiB by default): a break inside the
    # first chunk restarts from 0. Small chunks make the resume visible with a small payload.
    monkeypatch.setattr(hf.constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    hub.drop_after(REPO, FILE, 70_000)
    buf = io.BytesIO()
    file_download.http_get(hf_hub_url(REPO, FILE, endpoint=hub.url), buf, expected_size=len(MODEL))
    assert hashlib.sha256(buf.getvalue()).hexdigest() == SHA
    gets = [r for r in hub.requests if r.method == "GET"]
    assert len(gets) == 2 and "range" not in gets[0].headers
    assert gets[1].headers["range"] in ("bytes=65536-", "bytes=70000-")


def test_reset_connection_surfaces_as_an_error(hub: FakeHub) -> None:
    # http_get retries a short body but not a reset socket: a downloader must resume that itself.
    hub.drop_after(REPO, FILE, 70_000, reset=True)
    with pytest.raises(httpx2.ReadError):
        file_download.http_get(hf_hub_url(REPO, FILE, endpoint=hub.url), io.BytesIO(),
                               expected_size=len(MODEL))


def test_corrupt_body_has_wrong_sha256(hub: FakeHub) -> None:
    hub.corrupt(REPO, FILE)
    body = _get(hub, REPO, FILE)
    assert len(body) == len(MODEL) and hashlib.sha256(body).hexdigest() != SHA
    tail = _get(hub, REPO, FILE, start=200_000)
    assert tail != MODEL[200_000:], "a resumed range must be corrupted too"
    hub.corrupt(REPO, FILE, enabled=False)
    assert _get(hub, REPO, FILE) == MODEL


def test_gated_repo_needs_the_token(hub: FakeHub, tmp_path: Path) -> None:
    url = hf_hub_url("corp/Gated-GGUF", "g.gguf", endpoint=hub.url)
    with pytest.raises(GatedRepoError):
        file_download.get_hf_file_metadata(url)
    with pytest.raises(GatedRepoError):
        file_download.get_hf_file_metadata(url, token="hf_wrong")
    with pytest.raises(GatedRepoError):
        hf_hub_download("corp/Gated-GGUF", "g.gguf", endpoint=hub.url, cache_dir=tmp_path / "c")
    path = hf_hub_download("corp/Gated-GGUF", "g.gguf", endpoint=hub.url, token=hub.token,
                           cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == MODEL[:4096]
    assert HfApi(endpoint=hub.url).model_info("corp/Gated-GGUF").gated == "auto"


def test_unknown_repo_and_file(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("nobody/nothing")
    with pytest.raises(RepositoryNotFoundError):
        file_download.get_hf_file_metadata(hf_hub_url("nobody/nothing", FILE, endpoint=hub.url))
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "missing.gguf", endpoint=hub.url, cache_dir=tmp_path / "c")


def test_hf_hub_download_from_disk_file(tmp_path: Path) -> None:
    src = tmp_path / "m.gguf"
    src.write_bytes(MODEL)
    with FakeHub() as hub:
        hub.add_repo("disk/M-GGUF", {"m.gguf": src})
        path = hf_hub_download("disk/M-GGUF", "m.gguf", endpoint=hub.url, cache_dir=tmp_path / "c")
        assert Path(path).read_bytes() == MODEL
        info = HfApi(endpoint=hub.url).model_info("disk/M-GGUF", files_metadata=True)
        assert info.siblings[0].lfs.sha256 == SHA


def test_throttle_slows_bodies(hub: FakeHub) -> None:
    hub.throttle(1_000_000)
    t0 = time.monotonic()
    assert _get(hub, REPO, FILE) == MODEL
    assert time.monotonic() - t0 > 0.2


def test_command_line_serves_a_file(tmp_path: Path) -> None:
    src = tmp_path / "cli.gguf"
    src.write_bytes(MODEL[:5000])
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("hub_server.py")),
                             "--repo", f"cli/Cli-GGUF={src}"], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        env_url = hf_hub_url("cli/Cli-GGUF", "cli.gguf", endpoint=url)
        assert file_download.get_hf_file_metadata(env_url).size == 5000
    finally:
        proc.terminate()
        proc.wait(5)


def test_env_endpoint_in_a_subprocess(hub: FakeHub, tmp_path: Path) -> None:
    # A downloader run as a separate process finds the fake through HF_ENDPOINT alone.
    code = ("from huggingface_hub import HfApi, hf_hub_download\n"
            f"print(HfApi().model_info({REPO!r}).sha)\n"
            f"print(open(hf_hub_download({REPO!r}, {FILE!r}), 'rb').read() == bytes(range(256)) * 1200)\n")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "h"),
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == [hub.commit_sha(REPO), "True"], out.stderr


def _get(hub: FakeHub, repo: str, filename: str, start: int = 0) -> bytes:
    buf = io.BytesIO(b"\0" * start)
    buf.seek(start)
    file_download.http_get(hf_hub_url(repo, filename, endpoint=hub.url), buf, resume_size=start)
    return buf.getvalue()[start:]
