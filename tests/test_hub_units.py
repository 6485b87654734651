"""The logic around downloads that needs no server: names, grouping, card text,
disk space, and picking up what a previous run left."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rmm_tray import RemotePart
from rmm_tray.models.download_checks import (
    DownloadError,
    HashingFile,
    check_disk_space,
    safe_relative,
    sha256_file,
)
from rmm_tray.models.downloads import Downloader
from rmm_tray.plugins.hf_hub import card_license, card_summary, group_gguf_files


def test_split_files_are_one_model_and_incomplete_splits_or_projectors_are_left_out() -> None:
    parts = [RemotePart(f"Q8_0/big-Q8_0-0000{i}-of-00003.gguf", 10, f"h{i}") for i in (2, 1, 3)]
    files = group_gguf_files("o/r", [
        *parts,
        RemotePart("small-Q4_K_M.gguf", 5, "s"),
        RemotePart("mmproj-f16.gguf", 3, "m"),
        RemotePart("half-00001-of-00002.gguf", 4, "x"),
        RemotePart("README.md", 1),
    ])
    assert [(f.name, f.size, f.quantization, len(f.parts)) for f in files] == [
        ("small-Q4_K_M.gguf", 5, "Q4_K_M", 1),
        ("Q8_0/big-Q8_0-00001-of-00003.gguf", 30, "Q8_0", 3),
    ]
    assert [p.sha256 for p in files[1].parts] == ["h1", "h2", "h3"]


def test_card_summary_is_the_first_prose_paragraph() -> None:
    card = ("---\nlicense: apache-2.0\ntags: [gguf]\n---\n\n# Title\n\n[![badge](x.svg)](y)\n\n"
            "| a | b |\n|---|---|\n\n"
            "This is **the** model, see [the paper](http://x).\nSecond line.\n\nMore.")
    assert card_summary(card) == "This is the model, see the paper. Second line."
    assert card_license(card) == "apache-2.0"
    assert card_summary("x" * 1000, limit=50).endswith("…")


@pytest.mark.parametrize("repo, name", [
    ("o/r", "../x.gguf"), ("o/r", "/abs.gguf"), ("o/r", "a\\b.gguf"), ("o/r", "a//b.gguf"),
    ("o/r", "model.bin"), ("o/r", "ok/./x.gguf"), ("../r", "x.gguf"), ("o/r/s", "x.gguf"),
    ("o/..", "x.gguf"), ("o/r", "bad\nname.gguf"),
])
def test_names_that_would_leave_models_are_refused(repo: str, name: str) -> None:
    with pytest.raises(DownloadError, match="refusing"):
        safe_relative(repo, name)


def test_plain_names_are_kept() -> None:
    kept = safe_relative("Org/Repo-GGUF", "Q4/model-Q4_K_M.gguf")
    assert kept.as_posix() == "Org/Repo-GGUF/Q4/model-Q4_K_M.gguf"


def test_disk_space_is_checked_with_a_margin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 << 30, 9 << 30, 1 << 30))
    check_disk_space(tmp_path, 500 << 20, "small")
    refused = r"not enough disk space for big: it needs 1.0 GB .* 1.1 GB is free"
    with pytest.raises(DownloadError, match=refused):
        check_disk_space(tmp_path, 1_000_000_000, "big")


def test_hashing_file_hashes_the_old_prefix_and_the_new_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.part"
    path.write_bytes(b"hello ")
    with HashingFile(path, 6) as out:
        out.write(b"world")
    assert out.digest() == sha256_file(path)
    assert path.read_bytes() == b"hello world"

    rewound = HashingFile(path, 11)
    rewound.seek(0)  # a server that ignored the Range: the writer starts over
    rewound.truncate()
    rewound.write(b"again")
    assert rewound.digest() == sha256_file(path) and path.read_bytes() == b"again"


class _Source:
    """A catalogue that serves bytes from memory, for the restart bookkeeping."""

    name = "mem"
    remote = True

    def __init__(self, data: bytes) -> None:
        self.data = data

    def download(self, part, repo_id, out, *, offset, progress, cancel):  # type: ignore[no-untyped-def]
        out.write(self.data[offset:])
        progress(len(self.data), len(self.data))


def test_an_interrupted_download_is_resumed_by_the_next_run(tmp_path: Path) -> None:
    import hashlib

    from rmm_tray import RemoteModelFile

    data = b"GGUF" + bytes(range(256)) * 100
    part = RemotePart("m-Q4_0.gguf", len(data), hashlib.sha256(data).hexdigest())
    file = RemoteModelFile("o/r", part.filename, (part,), "Q4_0")
    source = _Source(data)
    first = Downloader(tmp_path, lambda: [source])
    job = first.prepare(source, file)
    first._write_note(job)  # what run() leaves when the process dies mid-way
    staged = tmp_path / ".downloads" / "o" / "r" / "m-Q4_0.gguf.part"
    staged.write_bytes(data[:1000])

    second = Downloader(tmp_path, lambda: [source])
    assert [n["name"] for n in second.interrupted()] == ["m-Q4_0.gguf"]
    done = threading.Event()
    second.listeners.append(lambda j: done.set() if j.state == "done" else None)
    [resumed] = second.resume_interrupted()
    assert done.wait(10), resumed.error
    assert (tmp_path / "o" / "r" / "m-Q4_0.gguf").read_bytes() == data
    assert second.interrupted() == [] and not staged.exists()
