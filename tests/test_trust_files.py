"""Trust: nothing is deleted or loaded outside models/, odd files never hang or
break a command, and the model list tells the truth (quantization, truncated
files, a default that imports do not change).

Each rule runs through its entry points: the CLI in a subprocess, the Models
view's controller as the popup's js_api calls it, and the functions and plugins
underneath. Odd files are made here: FIFOs, folders, dangling links, devices,
tiny GGUF files cut short. Anything that used to hang runs under a timeout, so a
regression fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from conftest import Page, run_cli
from desktop_helpers import wait_for
from rmm_tray.app import App
from rmm_tray.chat.templates import TemplateError, load_template_file
from rmm_tray.desktop.chat_controller import ChatController
from rmm_tray.desktop.models_controller import ModelsController
from rmm_tray.engine.types import EngineStatus
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome
from rmm_tray.models import cache as model_cache
from rmm_tray.models.acquire import import_model
from rmm_tray.models.gguf import GGUFError, read_gguf
from rmm_tray.models.manage import delete_model
from rmm_tray.models.sources import ModelSource
from rmm_tray.models.starter import STARTER_FILE, STATE_FILE
from rmm_tray.models.store import NAME_HINT, ModelNotFound, list_models

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")

CLI_TIMEOUT = 20  # a hang fails here, in seconds, never holds up the suite
MODEL = "tiny-Q4_K_M.gguf"


# -- helpers --------------------------------------------------------------------


def gguf_file(path: Path, *, label: str = "tiny", tensor: bool = True) -> Path:
    """A small valid GGUF, laid out as llama.cpp's converter writes it: the
    tokenizer's keys, then ``general.file_type`` (Q4_K_M), then the tensor data."""
    import gguf
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(label)
    w.add_block_count(1)
    w.add_context_length(2048)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"t{i}" for i in range(20)])
    w.add_file_type(15)
    if tensor:
        w.add_tensor("token_embd.weight", np.ones((16, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture()
def data_home(home: Path) -> Path:
    """A data home that has had its starter model (so no command copies 253 MB in)."""
    (home / STATE_FILE).write_text(json.dumps({"starter_installed": STARTER_FILE}))
    return home


def no_hang(fn: Callable[..., Any], *args: Any, fifos: tuple[Path, ...] = (), timeout: float = 5) -> Any:
    """``fn(*args)``, failing the test (not hanging it) when it does not return in
    ``timeout`` s; a reader stuck on one of ``fifos`` is released first."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        for fifo in fifos:  # a waiting open() of the read end returns once a writer comes
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail(f"{getattr(fn, '__name__', fn)} hung (a FIFO was opened?)")
    if "error" in out:
        raise out["error"]
    return out.get("value")


class FakeEngine:
    """Stands in for llama.cpp: records what it is asked to load."""

    def __init__(self) -> None:
        self.loads: list[Path] = []
        self.loaded = None

    def load(self, path: Path) -> Future:
        self.loads.append(path)
        done: Future = Future()
        done.set_result(None)
        return done

    def unload(self) -> Future:
        done: Future = Future()
        done.set_result(None)
        return done

    def status(self) -> EngineStatus:
        return EngineStatus("idle", None)

    def close(self) -> None:
        pass


class LocalApp(App):
    """The real App with only the local-folder importer as its model source."""

    def sources(self) -> list[ModelSource]:
        from rmm_tray.plugins.local_folder import LocalFolderSource

        return [LocalFolderSource()]


def open_app(home: Path) -> LocalApp:
    data = DataHome(home)
    app = LocalApp(data, Config.load(data.config_file))
    app._engine = FakeEngine()  # type: ignore[assignment]
    return app


@pytest.fixture()
def popup(data_home: Path):
    """The popup's two controllers over one app, and the page they talk to."""
    app = open_app(data_home)
    page = Page()
    chat = ChatController(app, page)
    ctl = ModelsController(app, page, chat=chat)
    yield app, ctl, chat, page
    ctl.work.close()
    chat.work.close()


def errors_of(page: Page) -> list[str]:
    return [e["message"] for e in page.events if e["type"] in ("error", "models.error")]


def default_in(home: Path) -> str:
    return Config.load(home / "config.toml")["model"]["default"]


# -- 1. nothing is deleted or loaded outside models/ ------------------------------


@pytest.fixture()
def bystanders(data_home: Path, tmp_path: Path) -> dict[str, Path]:
    """One model in models/, and files a bad name could reach: the config, a GGUF
    beside models/, one outside the data home."""
    models = data_home / "models"
    return {
        "model": gguf_file(models / MODEL),
        "config": data_home / "config.toml",
        "beside": gguf_file(data_home / "beside.gguf"),
        "outside": gguf_file(tmp_path / "elsewhere" / "outside.gguf"),
    }


def refs(home: Path, files: dict[str, Path]) -> dict[str, str]:
    models = home / "models"
    return {
        "dotdot into the config": f"{models}/../config.toml",
        "relative ../ beside models/": "../beside.gguf",
        "absolute path outside": str(files["outside"]),
        "a path to the model itself": str(files["model"]),
        "dot": ".",
        "a part of the name": "tiny",
        "empty": "",
    }


REFS = ["dotdot into the config", "relative ../ beside models/", "absolute path outside",
        "a path to the model itself", "dot", "a part of the name", "empty"]


def rm_cli(home: Path, ref: str) -> str:
    result = run_cli("models", "rm", ref, timeout=CLI_TIMEOUT)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def rm_controller(home: Path, ref: str) -> str:
    app = open_app(home)
    page = Page()
    ctl = ModelsController(app, page)
    try:
        ctl.delete(ref).result(10)
    finally:
        ctl.work.close()
    (line,) = errors_of(page)
    return line


def rm_function(home: Path, ref: str) -> str:
    with pytest.raises(ModelNotFound) as caught:
        delete_model(open_app(home), ref)
    return str(caught.value)


@pytest.mark.parametrize("entry", [
    pytest.param(rm_cli, id="cli", marks=pytest.mark.integration),
    pytest.param(rm_controller, id="popup"),
    pytest.param(rm_function, id="delete_model"),
])
@pytest.mark.parametrize("what", REFS)
def test_delete_takes_only_a_name_as_listed(data_home: Path, bystanders: dict[str, Path],
                                            monkeypatch: pytest.MonkeyPatch, entry, what: str) -> None:
    # In models/, "../beside.gguf" is the file beside it (the CLI's own working
    # folder is the repository: there the path leads nowhere, and is refused too).
    monkeypatch.chdir(data_home / "models")
    line = entry(data_home, refs(data_home, bystanders)[what])
    assert NAME_HINT in line or "no model named" in line, line
    if what in ("a path to the model itself", "a part of the name"):
        assert f"'{MODEL}'" in line, "says which name to use"
    for path in bystanders.values():
        assert path.exists(), f"{path} was removed"


@pytest.mark.integration
def test_the_exact_name_deletes_and_a_linked_folder_is_left_alone(data_home: Path, tmp_path: Path) -> None:
    models = data_home / "models"
    gguf_file(models / "acme" / MODEL)
    theirs = gguf_file(tmp_path / "their-models" / "m.gguf")
    (models / "linked").symlink_to(theirs.parent, target_is_directory=True)
    listed = json.loads(run_cli("models", "list", "--json", timeout=CLI_TIMEOUT).stdout)
    assert sorted(m["name"] for m in listed) == [f"acme/{MODEL}", "linked/m.gguf"]

    refused = run_cli("models", "rm", "linked/m.gguf", timeout=CLI_TIMEOUT)
    assert refused.returncode == 1 and "linked from outside models/" in refused.stderr
    assert theirs.exists(), "a file outside models/ is never deleted"

    removed = run_cli("models", "rm", f"acme/{MODEL}", timeout=CLI_TIMEOUT)
    assert removed.returncode == 0 and f"removed acme/{MODEL}" in removed.stdout, removed.stderr
    assert not (models / "acme").exists()


@pytest.mark.parametrize("via", ["models_use", "set_model"])
@pytest.mark.parametrize("what", ["absolute path outside", "relative ../ beside models/",
                                  "a path to the model itself", "a part of the name"])
def test_the_popup_loads_only_models_in_the_list(popup, bystanders: dict[str, Path],
                                                 monkeypatch: pytest.MonkeyPatch, via: str,
                                                 what: str) -> None:
    app, ctl, chat, page = popup
    monkeypatch.chdir(app.home.models)
    ref = refs(app.home.root, bystanders)[what]
    if via == "models_use":
        ctl.use(ref)  # queues the load on the chat's worker
        wait_for(lambda: errors_of(page), 10, "the load to be refused")
    else:
        chat.set_model(ref).result(10)
    assert app.engine.loads == [], "the engine was asked to open a path the page sent"
    (line,) = errors_of(page)
    assert NAME_HINT in line or "no model named" in line, line

    chat.set_model(MODEL).result(10)
    assert app.engine.loads == [bystanders["model"]], "the name as listed loads"


# -- 2. odd files never hang or break a command -------------------------------------


@pytest.fixture()
def odd_models(data_home: Path, tmp_path: Path) -> dict[str, Path]:
    """models/ with one good model among a FIFO, a link to a FIFO, a link to a
    device, a folder named like a model and a dangling link."""
    models = data_home / "models"
    good = gguf_file(models / MODEL)
    fifo = models / "fifo.gguf"
    os.mkfifo(fifo)
    elsewhere_fifo = tmp_path / "pipe"
    os.mkfifo(elsewhere_fifo)
    (models / "to-fifo.gguf").symlink_to(elsewhere_fifo)
    (models / "device.gguf").symlink_to("/dev/zero")
    gguf_file(models / "folder.gguf" / "inner.gguf")
    (models / "gone.gguf").symlink_to(tmp_path / "moved-away.gguf")
    return {"good": good, "fifo": fifo, "pipe": elsewhere_fifo}


SKIPPED = ("fifo.gguf", "to-fifo.gguf", "device.gguf")


def check_listing(names: list[str], errors: dict[str, Any]) -> None:
    assert sorted(names) == ["folder.gguf/inner.gguf", "gone.gguf", MODEL]
    assert errors[MODEL] is None and errors["folder.gguf/inner.gguf"] is None
    assert errors["gone.gguf"] == "file is missing"


@pytest.mark.integration
def test_models_list_skips_odd_files_with_a_warning_cli(odd_models: dict[str, Path]) -> None:
    result = run_cli("models", "list", "--json", timeout=CLI_TIMEOUT)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    check_listing([m["name"] for m in listed], {m["name"]: m["error"] for m in listed})
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    for name in SKIPPED:
        assert sum(name in line for line in warnings) >= 1, (name, warnings)
    assert any("fifo.gguf: not a regular file (a FIFO)" in line for line in warnings), warnings
    assert len(warnings) == len(SKIPPED), "one warning per odd file"
    table = run_cli("models", "list", timeout=CLI_TIMEOUT)
    assert table.returncode == 0 and MODEL in table.stdout


@pytest.mark.parametrize("use_cache", [True, False], ids=["cached", "uncached"])
def test_models_list_skips_odd_files_in_process(odd_models: dict[str, Path], data_home: Path,
                                                caplog: pytest.LogCaptureFixture, use_cache: bool) -> None:
    with caplog.at_level(logging.WARNING):
        listed = no_hang(lambda: list_models(data_home / "models", use_cache=use_cache),
                         fifos=(odd_models["fifo"], odd_models["pipe"]))
    check_listing([m.name for m in listed], {m.name: m.error for m in listed})
    for name in SKIPPED:
        assert any(name in r.getMessage() for r in caplog.records), name


def test_the_popup_lists_and_picks_among_odd_files(popup, odd_models: dict[str, Path]) -> None:
    app, ctl, chat, page = popup
    no_hang(lambda: ctl.local().result(10), fifos=(odd_models["fifo"], odd_models["pipe"]))
    items = page.last("models.local")["items"]
    check_listing([m["name"] for m in items], {m["name"]: m["error"] for m in items})
    assert sorted(chat.models()) == ["folder.gguf/inner.gguf", "gone.gguf", MODEL]
    # Named by the page anyway, a FIFO is not a model in the list: nothing opens it.
    no_hang(lambda: chat.set_model("fifo.gguf").result(10), fifos=(odd_models["fifo"],))
    assert app.engine.loads == [] and "no model named 'fifo.gguf'" in errors_of(page)[-1]


@pytest.mark.parametrize("make, kind", [
    (lambda p: os.mkfifo(p), "a FIFO"),
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: p.symlink_to("/dev/zero"), "a device"),
])
def test_the_header_reader_and_the_cache_never_open_a_special_file(tmp_path: Path, make, kind: str) -> None:
    path = tmp_path / "odd.gguf"
    make(path)
    with pytest.raises(GGUFError, match=f"odd.gguf: not a regular file \\({kind}\\)"):
        no_hang(read_gguf, path, fifos=(path,))
    cache = model_cache.MetadataCache(tmp_path / "cache.json")
    info, error = no_hang(cache.read, path, os.stat(path), fifos=(path,))
    assert info is None and error == f"odd.gguf: not a regular file ({kind})"


@pytest.fixture()
def odd_imports(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "downloads"
    good = gguf_file(folder / "good.gguf")
    fifo = folder / "fifo.gguf"
    os.mkfifo(fifo)
    (folder / "gone.gguf").symlink_to(tmp_path / "nowhere.gguf")
    (folder / "device.gguf").symlink_to("/dev/zero")
    gguf_file(folder / "sub.gguf" / "inner.gguf")
    empty = tmp_path / "empty"
    empty.mkdir()
    return {"folder": folder, "good": good, "fifo": fifo, "gone": folder / "gone.gguf",
            "device": folder / "device.gguf", "empty": empty}


IMPORT_ERRORS = {
    "fifo": "fifo.gguf: not a regular file (a FIFO)",
    "device": "device.gguf: not a regular file (a device)",
    "gone": "gone.gguf is missing",
    "empty": "no GGUF files to import in",
}


@pytest.mark.integration
@pytest.mark.parametrize("what", sorted(IMPORT_ERRORS))
def test_importing_an_odd_path_is_one_line_cli(data_home: Path, odd_imports: dict[str, Path],
                                               what: str) -> None:
    result = run_cli("models", "import", str(odd_imports[what]), timeout=CLI_TIMEOUT)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"rmm-tray: error: {IMPORT_ERRORS[what]}"), line
    assert list((data_home / "models").iterdir()) == []


@pytest.mark.parametrize("what", sorted(IMPORT_ERRORS))
def test_importing_an_odd_path_is_one_line_popup(popup, odd_imports: dict[str, Path], what: str) -> None:
    app, ctl, chat, page = popup
    no_hang(lambda: ctl.import_model(str(odd_imports[what])).result(10), fifos=(odd_imports["fifo"],))
    (line,) = errors_of(page)
    assert IMPORT_ERRORS[what] in line
    assert list(app.home.models.iterdir()) == []


@pytest.mark.parametrize("entry", ["cli", "popup", "import_model"])
def test_importing_a_folder_skips_odd_files_and_imports_the_rest(
        data_home: Path, odd_imports: dict[str, Path], caplog: pytest.LogCaptureFixture, entry: str) -> None:
    folder, fifo = odd_imports["folder"], odd_imports["fifo"]
    if entry == "cli":
        result = run_cli("models", "import", str(folder), timeout=CLI_TIMEOUT)
        assert result.returncode == 0, result.stderr
        log_text = result.stderr
    else:
        app = open_app(data_home)
        with caplog.at_level(logging.WARNING):
            if entry == "popup":
                page = Page()
                ctl = ModelsController(app, page)
                no_hang(lambda: ctl.import_model(str(folder)).result(10), fifos=(fifo,))
                ctl.work.close()
                assert errors_of(page) == []
            else:
                no_hang(import_model, app, str(folder), fifos=(fifo,))
        log_text = caplog.text
    models = data_home / "models"
    assert sorted(p.name for p in models.iterdir()) == ["good.gguf", "inner.gguf"]
    for name in ("fifo.gguf", "gone.gguf", "device.gguf"):
        assert name in log_text, (name, log_text)


def test_discovery_skips_odd_files_of_other_apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    from rmm_tray.plugins.other_apps import LMStudioSource, OllamaSource

    monkeypatch.setenv("HOME", str(tmp_path))
    repo = tmp_path / ".lmstudio" / "models" / "pub" / "repo"
    gguf_file(repo / "good.gguf")
    os.mkfifo(repo / "fifo.gguf")
    (repo / "dev.gguf").symlink_to("/dev/zero")
    # LM Studio's settings file and an Ollama manifest as FIFOs: a read would block.
    (tmp_path / ".lmstudio").mkdir(exist_ok=True)
    os.mkfifo(tmp_path / ".lmstudio" / "settings.json")
    ollama = tmp_path / "ollama"
    manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / "m" / "latest"
    manifest.parent.mkdir(parents=True)
    os.mkfifo(manifest)
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama))
    fifos = (repo / "fifo.gguf", tmp_path / ".lmstudio" / "settings.json", manifest)

    with caplog.at_level(logging.WARNING):
        found = no_hang(LMStudioSource().discover, fifos=fifos)
        assert [c.name for c in found] == ["lmstudio:pub/repo/good.gguf"]
        assert no_hang(OllamaSource().discover, fifos=fifos) == []
    text = caplog.text
    for name in ("fifo.gguf", "dev.gguf", "settings.json", "ollama:m:latest"):
        assert name in text, (name, text)


@pytest.fixture()
def odd_prompts(data_home: Path, tmp_path: Path) -> Path:
    prompts = data_home / "prompts"
    (prompts / "mine.toml").write_text('description = "mine"\nbody = "Mine: {{input}}"\n')
    os.mkfifo(prompts / "fifo.toml")
    (prompts / "folder.toml").mkdir()
    (prompts / "gone.toml").symlink_to(tmp_path / "nowhere.toml")
    (prompts / "device.toml").symlink_to("/dev/zero")
    return prompts


ODD_PROMPTS = ("fifo.toml", "folder.toml", "gone.toml", "device.toml")


@pytest.mark.integration
@pytest.mark.parametrize("command", [("prompts", "list", "--json"), ("prompts", "show", "mine")])
def test_odd_prompt_files_are_skipped_cli(odd_prompts: Path, command: tuple[str, ...]) -> None:
    result = run_cli(*command, timeout=CLI_TIMEOUT)
    assert result.returncode == 0, result.stderr
    if command[1] == "list":
        names = {t["name"] for t in json.loads(result.stdout)}
        assert "mine" in names and "translate" in names and not names & {"fifo", "folder", "gone"}
    else:
        assert "Mine: {{input}}" in result.stdout
    for name in ODD_PROMPTS:
        assert name in result.stderr, (name, result.stderr)


def test_odd_prompt_files_are_skipped_in_process(odd_prompts: Path, data_home: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    app = open_app(data_home)
    with caplog.at_level(logging.WARNING):
        template = no_hang(app.template, "mine", fifos=(odd_prompts / "fifo.toml",))
    assert template.body == "Mine: {{input}}"
    for name in ODD_PROMPTS:
        assert name in caplog.text
        with pytest.raises(TemplateError, match=name):
            no_hang(load_template_file, odd_prompts / name, fifos=(odd_prompts / "fifo.toml",))


def test_a_cache_record_of_the_wrong_type_counts_as_missing(tmp_path: Path) -> None:
    models = tmp_path / "models"
    model = gguf_file(models / "mymodel.gguf")
    cache_file = tmp_path / "cache" / "models.json"
    list_models(models)  # the right record
    st = model.stat()
    good = json.loads(cache_file.read_text())["entries"][str(model)]
    bad_records = [
        {"version": "3"}, {"tensor_count": None}, {"metadata": ["x"]}, {"data_end": "big"},
        {"error": 5}, {"data_end": True},
        {"metadata": {"general.architecture": 5, "llama.context_length": "long",
                      "general.file_type": "15", "general.name": ["x"], "general.size_label": 1}},
    ]
    for change in bad_records:
        record = {**good, "size": st.st_size, "mtime_ns": st.st_mtime_ns, **change}
        cache_file.write_text(json.dumps({"format": model_cache.FORMAT, "entries": {str(model): record}}))
        (m,) = list_models(models)
        if "metadata" in change and isinstance(change["metadata"], dict):
            # The envelope is sound: the record is used, its odd values count as missing.
            assert m.info is not None and m.info.architecture == ""
            assert m.info.context_length is None and m.info.name == "mymodel"
            assert m.info.size_label == "" and m.to_dict()["quantization"] == ""
        else:
            assert m.error is None and m.info is not None and m.info.quantization == "Q4_K_M", change
            assert m.info.context_length == 2048


# -- 3. the model list tells the truth ---------------------------------------------


def test_quantization_comes_from_the_header_cold_and_cached(popup, data_home: Path) -> None:
    """``general.file_type`` comes after the tokenizer in llama.cpp's files; a name
    without a hint must still show Q4_K_M, from the cache too."""
    app, ctl, chat, page = popup
    gguf_file(data_home / "models" / "mymodel.gguf")
    for _ in range(2):  # cold, then from the cache
        (m,) = list_models(data_home / "models")
        assert m.to_dict()["quantization"] == "Q4_K_M"
    (m,) = list_models(data_home / "models", use_cache=False)
    assert m.info.quantization == "Q4_K_M"
    ctl.local().result(10)
    assert page.last("models.local")["items"][0]["quantization"] == "Q4_K_M"


@pytest.mark.integration
def test_quantization_and_truncation_in_the_cli_list(data_home: Path) -> None:
    models = data_home / "models"
    gguf_file(models / "mymodel.gguf")
    cut = gguf_file(models / "cut.gguf")
    os.truncate(cut, cut.stat().st_size - 100)
    for _ in range(2):  # cold, then from the cache
        result = run_cli("models", "list", "--json", timeout=CLI_TIMEOUT)
        listed = {m["name"]: m for m in json.loads(result.stdout)}
        assert listed["mymodel.gguf"]["quantization"] == "Q4_K_M"
        assert listed["mymodel.gguf"]["error"] is None
        assert listed["cut.gguf"]["error"].startswith("file is truncated:")
    table = run_cli("models", "list", timeout=CLI_TIMEOUT).stdout
    assert "file is truncated" in table


def test_a_truncated_model_is_an_error_entry_that_fits_nowhere(popup, data_home: Path) -> None:
    app, ctl, chat, page = popup
    full = gguf_file(data_home / "models" / "full.gguf")
    cut = gguf_file(data_home / "models" / "cut.gguf")
    size = cut.stat().st_size
    os.truncate(cut, size - 1)
    info = read_gguf(full)
    assert info.data_end == full.stat().st_size, "the header says how long the file is"
    assert info.truncation(size) is None
    listed = {m.name: m for m in list_models(data_home / "models")}
    assert listed["full.gguf"].error is None
    assert listed["cut.gguf"].error == (
        f"file is truncated: {size - 1:,} of the {size:,} bytes its header promises "
        "(download or copy it again)")
    ctl.local().result(10)
    items = {m["name"]: m for m in page.last("models.local")["items"]}
    assert items["cut.gguf"]["error"] and items["cut.gguf"]["fit"] == ""
    assert items["full.gguf"]["error"] is None and items["full.gguf"]["fit"] == "fits"


def import_via(entry: str, home: Path, path: Path) -> None:
    if entry == "cli":
        result = run_cli("models", "import", str(path), timeout=CLI_TIMEOUT)
        assert result.returncode == 0, result.stderr
    elif entry == "popup":
        app = open_app(home)
        page = Page()
        ctl = ModelsController(app, page)
        ctl.import_model(str(path)).result(10)
        ctl.work.close()
        assert errors_of(page) == []
    else:
        import_model(open_app(home), str(path))


@pytest.mark.parametrize("entry", [pytest.param("cli", marks=pytest.mark.integration),
                                   "popup", "import_model"])
def test_importing_never_changes_the_default(data_home: Path, tmp_path: Path, entry: str) -> None:
    # The first model ever becomes the default, remembered in config.toml...
    import_via(entry, data_home, gguf_file(tmp_path / "in" / "m-first.gguf"))
    assert default_in(data_home) == "m-first.gguf"
    # ...and one that sorts before it does not take its place.
    import_via(entry, data_home, gguf_file(tmp_path / "in" / "a-later.gguf"))
    assert default_in(data_home) == "m-first.gguf"
    assert open_app(data_home).default_model().name == "m-first.gguf"


@pytest.mark.parametrize("entry", [pytest.param("cli", marks=pytest.mark.integration),
                                   "popup", "import_model"])
def test_an_import_keeps_the_default_in_effect_when_none_was_set(data_home: Path, tmp_path: Path,
                                                                 entry: str) -> None:
    gguf_file(data_home / "models" / "m-there.gguf")  # no default set: it is the one in effect
    assert default_in(data_home) == ""
    import_via(entry, data_home, gguf_file(tmp_path / "in" / "a-new.gguf"))
    assert default_in(data_home) == "m-there.gguf"
    assert open_app(data_home).default_model().name == "m-there.gguf"
