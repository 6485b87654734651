"""Downloads are bounded: never more bytes than the listed size (an endless body
stops at the first byte past it and nothing is kept), and a bad download note
is skipped with a warning while the others resume."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import FakeHub

from conftest import run_cli
from rmm_tray.models.download_checks import HashingFile, PartTooLong, staging
from rmm_tray.models.downloads import Downloader
from rmm_tray.models.sources import ModelSource, RemoteModelFile, RemotePart
from rmm_tray.models.starter import STARTER_FILE, STATE_FILE

SIZE = 2 << 20
CHUNK = 64 << 10
#: How much a misbehaving fake source offers before it gives up by itself: far
#: more than SIZE, so a writer without a bound fails the test instead of hanging it.
OFFERED = 64 << 20


def skip_starter(home: Path) -> None:
    """This data home has had its starter model: a CLI run does not copy 253 MB first."""
    (home / STATE_FILE).write_text(json.dumps({"starter_installed": STARTER_FILE}))



class EndlessSource(ModelSource):
    """Sends the listed bytes, then keeps going (up to OFFERED)."""

    name = "endless"
    remote = True

    def __init__(self, swallow: bool = False) -> None:
        self.swallow = swallow
        self.written = 0

    def download(self, part, repo_id, out, *, offset, progress, cancel):  # type: ignore[no-untyped-def]
        chunk = b"\0" * CHUNK
        try:
            while self.written < OFFERED:
                out.write(chunk)
                self.written += len(chunk)
        except Exception:
            if not self.swallow:  # a careless source catches everything
                raise


class GoodSource(ModelSource):
    name = "good"
    remote = True

    def __init__(self, data: bytes) -> None:
        self.data = data

    def download(self, part, repo_id, out, *, offset, progress, cancel):  # type: ignore[no-untyped-def]
        out.write(self.data[offset:])
        progress(len(self.data), len(self.data))


def model_file(repo: str = "owner/repo", name: str = "m.Q4_K_M.gguf", data: bytes | None = None,
               size: int = SIZE) -> RemoteModelFile:
    sha = hashlib.sha256(data).hexdigest() if data is not None else None
    return RemoteModelFile(repo, name, (RemotePart(name, size if data is None else len(data), sha),))


def leftovers(models: Path) -> list[str]:
    return sorted(p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file())


# -- the writer's bound -------------------------------------------------------------------

def test_the_writer_refuses_bytes_past_the_listed_size(tmp_path: Path) -> None:
    out = HashingFile(tmp_path / "x.gguf.part", 0, limit=10)
    out.write(b"0123456789")
    with pytest.raises(PartTooLong) as refused:
        out.write(b"!")
    out.close()
    assert out.overflowed and (tmp_path / "x.gguf.part").read_bytes() == b"0123456789"
    assert "more than" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("swallow", [False, True], ids=["raises", "source-swallows"])
def test_an_endless_body_stops_at_the_listed_size_and_keeps_nothing(tmp_path: Path, swallow: bool) -> None:
    models = tmp_path / "models"
    downloader = Downloader(models)
    source = EndlessSource(swallow=swallow)
    job = downloader.prepare(source, model_file())
    with pytest.raises(PartTooLong) as failed:
        downloader.run(source, job)
    assert source.written <= SIZE, "not a byte past the listed size was taken"
    message = str(failed.value)
    assert "more than the 2.1 MB it listed" in message and "deleted" in message and "\n" not in message
    assert job.state == "failed" and job.error == message
    assert leftovers(models) == [], "no .part, no note, no model"


# -- notes of interrupted downloads ----------------------------------------------------------

def write_note(models: Path, file: RemoteModelFile, source: str, body: object | None = None) -> Path:
    path = staging(models, file.repo, file.name).with_suffix(".part.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    note = {"source": source, "repo": file.repo, "name": file.name,
            "parts": [{"filename": p.filename, "size": p.size, "sha256": p.sha256} for p in file.parts]}
    path.write_text(json.dumps(note if body is None else body), encoding="utf-8")
    return path


def test_bad_notes_are_skipped_and_the_others_resume(tmp_path: Path, caplog) -> None:
    models = tmp_path / "models"
    data = os.urandom(4096)
    good = model_file("owner/good", "good.Q4_K_M.gguf", data)
    source = GoodSource(data)
    write_note(models, good, "good")
    odd = model_file("owner/odd", "odd.Q4_K_M.gguf", data)
    base = staging(models, "owner/odd", "x.gguf").parent
    bad_bodies = {
        "list.gguf": ["not", "a", "note"],
        "types.gguf": {"source": "good", "repo": 5, "name": "types.gguf", "parts": "all"},
        "parts.gguf": {"source": "good", "repo": "owner/odd", "name": "parts.gguf",
                       "parts": [{"filename": "parts.gguf", "size": "big"}]},
        "sizes.gguf": {"source": "good", "repo": "owner/odd", "name": "sizes.gguf",
                       "parts": [{"filename": "sizes.gguf", "size": True}]},
        "number.gguf": 42,
    }
    for name, body in bad_bodies.items():
        write_note(models, model_file("owner/odd", name, data), "good", body)
    (base / "garbage.gguf.part.json").write_bytes(b"\xff\xfe{")
    os.mkfifo(base / "fifo.gguf.part.json")
    (base / "folder.gguf.part.json").mkdir()
    assert odd  # the repo the odd notes live under

    downloader = Downloader(models, sources=lambda: [source])
    result: list = []
    # In a thread: reading a FIFO named like a note would block for ever.
    with caplog.at_level(logging.WARNING):
        t = threading.Thread(target=lambda: result.append(downloader.resume_interrupted()), daemon=True)
        t.start()
        t.join(10)
    assert not t.is_alive(), "resume blocked on a note (a FIFO?)"
    [job] = result[0]
    assert job.name == "good.Q4_K_M.gguf"
    skipped = [r.getMessage() for r in caplog.records if "ignoring download note" in r.getMessage()]
    assert len(skipped) == len(bad_bodies) + 3, skipped
    for name in [*bad_bodies, "garbage.gguf", "fifo.gguf", "folder.gguf"]:
        assert any(name + ".part.json" in m for m in skipped), name
    deadline = time.monotonic() + 10
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.state == "done", job.error
    assert (models / "owner" / "good" / "good.Q4_K_M.gguf").read_bytes() == data


# -- through the real client and CLI ------------------------------------------------------------

REPO_ID = "rmm-test/endless-GGUF"
FILE = "endless.Q4_K_M.gguf"


@pytest.fixture()
def endless_hub(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    skip_starter(home)
    with FakeHub() as hub:
        hub.add_repo(REPO_ID, {FILE: b"GGUF" + os.urandom(SIZE - 4)})
        hub.endless(REPO_ID, FILE)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield hub


@pytest.mark.integration
def test_pull_from_a_server_with_an_endless_body_stops_and_keeps_nothing(
        home: Path, endless_hub: FakeHub) -> None:
    started = time.monotonic()
    pulled = run_cli("models", "pull", REPO_ID, timeout=20)
    assert pulled.returncode == 1, pulled.stdout + pulled.stderr
    errors = [line for line in pulled.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, pulled.stderr
    assert errors[0].startswith("rmm-tray: error:") and "sent more than the 2.1 MB it listed" in errors[0]
    assert time.monotonic() - started < 30, "failed at once, no retries of a lying server"
    assert leftovers(home / "models") == [], "no .part, no note, no model"
    gets = [r for r in endless_hub.requests if r.method == "GET" and r.path.endswith(FILE)]
    assert len(gets) == 1, "a server that sends too much is not asked again"
