"""Search, pull, resume and verify through the real huggingface_hub client,
against a loopback server speaking the Hub's protocol (tests/hub_server.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_proxy import ForwardingProxy
from hub_server import FakeHub

from conftest import CLI, REPO, json_lines, run_cli

pytestmark = pytest.mark.integration

STARTER_REPO = "rmm-test/gemma-3-270m-GGUF"
STARTER_FILE = "gemma-3-270m-Q4_K_M.gguf"
BIG_REPO = "rmm-test/padded-GGUF"
BIG_FILE = "padded-7b.Q4_K_M.gguf"
BIG_SIZE = 6 << 20


def padded_gguf(path: Path, size: int) -> Path:
    """A real GGUF header followed by random bytes: enough to download and verify."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(2048)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with path.open("ab") as fh:
        fh.write(os.urandom(size - path.stat().st_size))
    return path


@pytest.fixture(scope="module")
def padded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return padded_gguf(tmp_path_factory.mktemp("hub") / BIG_FILE, BIG_SIZE)


@pytest.fixture()
def hub(starter_model: Path, padded: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add_repo(STARTER_REPO, {STARTER_FILE: starter_model}, license="gemma", downloads=900,
                     card="# Gemma 3 270M\n\nA tiny base model from Google, quantized to GGUF for tests.\n")
        hub.add_repo(BIG_REPO, {BIG_FILE: padded}, downloads=5)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield hub


def model_files(home: Path) -> list[str]:
    """Every file under models/ a person would see (the staging folder is hidden)."""
    models = home / "models"
    return sorted(p.relative_to(models).as_posix() for p in models.rglob("*")
                  if p.is_file() and ".downloads" not in p.parts)


def file_gets(hub: FakeHub, filename: str) -> list[dict[str, str]]:
    return [r.headers for r in hub.requests if r.method == "GET" and r.path.endswith(filename)]


@pytest.mark.slow
def test_search_pull_then_chat_with_the_new_model(home: Path, hub: FakeHub) -> None:
    found = run_cli("models", "search", "gemma", "--json")
    assert found.returncode == 0, found.stderr
    assert [r["id"] for r in json.loads(found.stdout)] == [STARTER_REPO]

    files = run_cli("models", "files", STARTER_REPO)
    assert files.returncode == 0, files.stderr
    assert "License: gemma" in files.stdout and "A tiny base model" in files.stdout
    assert "Q4_K_M" in files.stdout and "fits" in files.stdout

    info = run_cli("models", "info", STARTER_REPO, "--json")
    assert info.returncode == 0, info.stderr
    details = json.loads(info.stdout)
    assert details["license"] == "gemma"
    assert [(f["name"], f["quantization"], f["recommended"]) for f in details["files"]] == [
        (STARTER_FILE, "Q4_K_M", True)]

    pulled = run_cli("models", "pull", STARTER_REPO, "--json")
    assert pulled.returncode == 0, pulled.stderr
    events = json_lines(pulled.stdout)
    assert events[-1]["type"] == "done"
    assert events[-1]["name"] == f"{STARTER_REPO}/{STARTER_FILE}"
    assert any(e["type"] == "progress" and e["state"] == "verifying" for e in events)
    assert f"{STARTER_REPO}/{STARTER_FILE}" in model_files(home)
    assert not (home / "models" / ".downloads" / "rmm-test").exists()

    chat = run_cli("chat", "-m", "rmm-test/gemma-3-270m-GGUF", "--json", "--max-tokens", "4", "Hello")
    assert chat.returncode == 0, chat.stderr
    lines = json_lines(chat.stdout)
    assert lines[-1]["type"] == "done" and lines[-1]["completion_tokens"] > 0

    again = run_cli("models", "pull", f"{STARTER_REPO}:Q4_K_M")
    assert again.returncode == 1 and "already in models/" in again.stderr


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_dropped_connection_resumes_and_the_sha256_checks(home: Path, hub: FakeHub, reset: bool) -> None:
    hub.drop_after(BIG_REPO, BIG_FILE, 1 << 20, times=2, reset=reset)
    pulled = run_cli("models", "pull", BIG_REPO)
    assert pulled.returncode == 0, pulled.stderr
    assert "sha256 verified" in pulled.stdout
    gets = file_gets(hub, BIG_FILE)
    assert len(gets) >= 3
    if not reset:  # a reset may throw away bytes already in flight; a clean close does not
        assert any(h.get("range", "").startswith("bytes=1048576-") for h in gets), gets
    assert f"{BIG_REPO}/{BIG_FILE}" in model_files(home)


def test_a_restart_mid_download_resumes(home: Path, hub: FakeHub) -> None:
    hub.throttle(1 << 20)
    proc = subprocess.Popen([*CLI, "models", "pull", BIG_REPO], cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = home / "models" / ".downloads" / BIG_REPO / (BIG_FILE + ".part")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 2 << 20):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = part.stat().st_size
    assert 2 << 20 <= kept < BIG_SIZE
    assert model_files(home) == ["gemma-3-270m-q4_k_m.gguf"], "a half file is not a model"
    listed = run_cli("models", "list", "--json")
    assert "padded" not in listed.stdout

    hub.throttle(0)
    hub.clear_requests()
    pulled = run_cli("models", "pull", BIG_REPO)
    assert pulled.returncode == 0, pulled.stderr
    ranges = [h.get("range") for h in file_gets(hub, BIG_FILE)]
    assert ranges and ranges[0] == f"bytes={kept}-", ranges
    assert f"{BIG_REPO}/{BIG_FILE}" in model_files(home)
    assert not part.exists()


def test_corrupt_bytes_are_rejected_and_nothing_is_left(home: Path, hub: FakeHub) -> None:
    hub.corrupt(BIG_REPO, BIG_FILE)
    pulled = run_cli("models", "pull", BIG_REPO)
    assert pulled.returncode == 1
    errors = [line for line in pulled.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, pulled.stderr
    assert errors[0].startswith("rmm-tray: error:") and "sha256" in errors[0] and "deleted" in errors[0]
    assert model_files(home) == ["gemma-3-270m-q4_k_m.gguf"]
    assert not list((home / "models" / ".downloads").rglob("*.part"))


def test_not_enough_disk_is_refused_before_downloading(home: Path, hub: FakeHub) -> None:
    hub.fake_size(BIG_REPO, BIG_FILE, 50 << 40)
    pulled = run_cli("models", "pull", BIG_REPO)
    assert pulled.returncode == 1
    assert "not enough disk space" in pulled.stderr and "55.0 TB" in pulled.stderr, pulled.stderr
    assert file_gets(hub, BIG_FILE) == []
    assert model_files(home) == ["gemma-3-270m-q4_k_m.gguf"]


@pytest.mark.parametrize("name", ["../../evil.gguf", "/tmp/evil.gguf", "sub/../../../evil.gguf",
                                  "..\\evil.gguf"])
def test_hostile_file_names_are_refused(home: Path, hub: FakeHub, padded: Path, name: str) -> None:
    hub.add_repo("evil/repo", {name: padded})
    pulled = run_cli("models", "pull", "evil/repo")
    assert pulled.returncode == 1
    assert "refusing file name" in pulled.stderr, pulled.stderr
    assert file_gets(hub, "evil.gguf") == []
    assert not (home / "evil.gguf").exists() and not (home.parent / "evil.gguf").exists()
    assert model_files(home) == ["gemma-3-270m-q4_k_m.gguf"]


def test_gated_repository_needs_a_token(home: Path, hub: FakeHub, padded: Path) -> None:
    hub.add_repo("gated/model-GGUF", {"model.Q8_0.gguf": padded}, gated=True)
    refused = run_cli("models", "pull", "gated/model-GGUF")
    assert refused.returncode == 1 and "gated" in refused.stderr and "HF_TOKEN" in refused.stderr
    assert model_files(home) == ["gemma-3-270m-q4_k_m.gguf"]
    allowed = run_cli("models", "pull", "gated/model-GGUF", env={"HF_TOKEN": hub.token})
    assert allowed.returncode == 0, allowed.stderr
    assert "gated/model-GGUF/model.Q8_0.gguf" in model_files(home)


def test_offline_and_unreachable_say_so_and_local_models_still_work(home: Path, hub: FakeHub) -> None:
    offline = run_cli("models", "search", "gemma", env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 1 and "offline mode" in offline.stderr
    unreachable = run_cli("models", "search", "gemma", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert unreachable.returncode == 1 and "cannot reach the Hub" in unreachable.stderr
    missing = run_cli("models", "pull", "nobody/nothing")
    assert missing.returncode == 1 and "no such repository" in missing.stderr
    listed = run_cli("models", "list", env={"HF_HUB_OFFLINE": "1"})
    assert listed.returncode == 0 and "gemma-3-270m-q4_k_m.gguf" in listed.stdout


def test_cancel_leaves_no_half_file(home: Path, hub: FakeHub) -> None:
    from rmm_tray.app import App
    from rmm_tray.plugins.hf_hub import HubSource

    app = App.open()
    source = HubSource(endpoint=hub.url)
    file = source.repo(BIG_REPO).files[0]
    hub.throttle(512 << 10)
    seen: list[tuple[str, int]] = []
    started = threading.Event()

    def watch(job) -> None:  # type: ignore[no-untyped-def]
        seen.append((job.state, job.done))
        if job.done > 0:
            started.set()

    app.downloads.listeners.append(watch)
    job = app.downloads.submit(source, file)
    assert started.wait(20)
    assert app.downloads.cancel(job.id)
    deadline = time.monotonic() + 10
    while job.state != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.state == "cancelled"
    assert model_files(home) == ["gemma-3-270m-q4_k_m.gguf"]
    assert not (home / "models" / ".downloads" / "rmm-test").exists()
    assert any(state == "downloading" and 0 < done < BIG_SIZE for state, done in seen)


def test_downloads_go_through_the_proxy_from_the_environment(home: Path, hub: FakeHub) -> None:
    with ForwardingProxy() as proxy:
        env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}
        pulled = run_cli("models", "pull", BIG_REPO, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert any(line.startswith(f"GET {hub.url}/api/models/{BIG_REPO}") for line in proxy.seen), proxy.seen
    assert f"GET {hub.url}/{BIG_REPO}/resolve/main/{BIG_FILE}" in proxy.seen
    assert f"{BIG_REPO}/{BIG_FILE}" in model_files(home)


def test_lfs_redirects_to_a_cdn_are_followed_and_resumed(home: Path, hub: FakeHub) -> None:
    hub.redirect_lfs()
    hub.drop_after(BIG_REPO, BIG_FILE, 1 << 20, times=1)
    pulled = run_cli("models", "pull", BIG_REPO)
    assert pulled.returncode == 0, pulled.stderr
    cdn = [r for r in hub.requests if r.method == "GET" and r.path.startswith(f"/_cdn/{BIG_REPO}/")]
    assert len(cdn) == 2 and cdn[1].headers.get("range") == "bytes=1048576-", cdn
    assert f"{BIG_REPO}/{BIG_FILE}" in model_files(home)
