"""The Models view's controller, without a window: a fake catalogue and a fake
local source, the real Downloader and models/ folder, and a page that records
the events it is sent."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import Page
from desktop_helpers import wait_for
from rmm_tray.app import App
from rmm_tray.desktop.models_controller import ModelsController, downloads_summary, short_name
from rmm_tray.home.config import Config
from rmm_tray.home.paths import DataHome
from rmm_tray.models import fit
from rmm_tray.models import manage as model_manager
from rmm_tray.models.sources import (
    DownloadCancelled,
    LocalModelCandidate,
    ModelSource,
    RemoteModelFile,
    RemotePart,
    RemoteRepo,
    RemoteRepoDetails,
    SourceError,
    link_or_copy,
)

GB = 1_000_000_000


def tiny_gguf(path: Path, label: str = "tiny") -> Path:
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(2048)
    writer.add_string("general.name", label)
    writer.add_string("general.size_label", "1M")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def part(name: str, data: bytes) -> RemotePart:
    return RemotePart(name, len(data), hashlib.sha256(data).hexdigest())


class Catalogue(ModelSource):
    """A remote source whose files are bytes in memory."""

    name = "fakehub"
    remote = True

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.repos: dict[str, RemoteRepoDetails] = {}
        self.gate: dict[str, threading.Event] = {}
        self.fail: Exception | None = None
        self.hold = False  # after the first chunk, wait for a cancel

    def search(self, query: str, *, sort: str = "downloads", limit: int = 20) -> list[RemoteRepo]:
        if query in self.gate:
            self.gate[query].wait(5)
        if self.fail is not None:
            raise self.fail
        return [RemoteRepo(r, downloads=10, likes=2, last_modified="2026-01-02T00:00:00")
                for r in self.repos if query.lower() in r.lower()][:limit]

    def repo(self, repo_id: str) -> RemoteRepoDetails:
        if repo_id not in self.repos:
            raise SourceError(f"{repo_id}: no such repository on the Hub")
        return self.repos[repo_id]

    def download(self, part, repo_id, out, *, offset, progress, cancel) -> None:  # type: ignore[no-untyped-def]
        data = self.blobs[part.filename]
        for i in range(offset, len(data), 1000):
            out.write(data[i:i + 1000])
            progress(min(i + 1000, len(data)), len(data))
            if self.hold:
                cancel.wait(10)
            if cancel.is_set():
                raise DownloadCancelled()


class OtherApp(ModelSource):
    """GGUF files another app keeps, imported by linking."""

    name = "lmstudio"

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def discover(self) -> list[LocalModelCandidate]:
        return [LocalModelCandidate(n, p, p.stat().st_size, self.name) for n, p in self.files.items()]

    def handles(self, ref: str) -> bool:
        return ref in self.files

    def fetch(self, ref, models_dir, *, copy=False, progress=None):  # type: ignore[no-untyped-def]
        return [link_or_copy(self.files[ref], models_dir / Path(ref).name, copy=copy)]


class Broken(ModelSource):
    name = "broken"

    def discover(self) -> list[LocalModelCandidate]:
        raise RuntimeError("cannot read its folder")


class FakeApp(App):
    def __init__(self, home: DataHome, sources: list[ModelSource]) -> None:
        super().__init__(home, Config.load(home.config_file))
        self._sources = sources

    def sources(self) -> list[ModelSource]:
        return list(self._sources)


def error_of(page: Page) -> str:
    return (page.last("models.error") or {}).get("message", "")


class Chat:
    def __init__(self) -> None:
        self.model: Path | None = None
        self.loads: list[str] = []
        self.pushes = 0

    def set_model(self, name: str) -> None:
        self.loads.append(name)

    def push_state(self) -> None:
        self.pushes += 1


class Engine:
    """Stands in for the llama.cpp engine: something is loaded until unloaded."""

    def __init__(self, path: Path) -> None:
        self.loaded = SimpleNamespace(path=path)
        self.unloads = 0

    def unload(self) -> Future:
        self.loaded = None
        self.unloads += 1
        done: Future = Future()
        done.set_result(None)
        return done

    def close(self) -> None:
        pass


BLOBS = {"tiny-Q4_K_M.gguf": b"GGUF" + bytes(range(256)) * 40, "tiny-Q8_0.gguf": b"GGUF" + bytes(5000)}


@pytest.fixture()
def setup(home: Path, monkeypatch: pytest.MonkeyPatch):
    # The fit verdicts must not depend on this machine's free memory.
    monkeypatch.setattr(fit, "machine_memory", lambda gpu_layers: (8 * GB, 0))
    monkeypatch.setattr(model_manager, "machine_memory", lambda gpu_layers: (8 * GB, 0))
    hub = Catalogue(BLOBS)
    tiny, evil = "tiny-Q4_K_M.gguf", "../../evil-Q8_0.gguf"
    hub.repos["acme/Tiny-GGUF"] = RemoteRepoDetails("acme/Tiny-GGUF", "A tiny model.", "mit", False, (
        RemoteModelFile("acme/Tiny-GGUF", tiny, (part(tiny, BLOBS[tiny]),), "Q4_K_M"),
        RemoteModelFile("acme/Tiny-GGUF", evil, (part(evil, b"x"),), "Q8_0")))
    hub.repos["acme/Big-GGUF"] = RemoteRepoDetails("acme/Big-GGUF", files=(
        RemoteModelFile("acme/Big-GGUF", "big-Q4_K_M.gguf", (RemotePart("big-Q4_K_M.gguf", 2 * GB),),
                        "Q4_K_M"),
        RemoteModelFile("acme/Big-GGUF", "big-Q8_0-00001-of-00002.gguf",
                        (RemotePart("big-Q8_0-00001-of-00002.gguf", 2 * GB),
                         RemotePart("big-Q8_0-00002-of-00002.gguf", GB)), "Q8_0"),
        RemoteModelFile("acme/Big-GGUF", "big-Q3_K_M.gguf", (RemotePart("big-Q3_K_M.gguf", 6_500_000_000),),
                        "Q3_K_M"),
        RemoteModelFile("acme/Big-GGUF", "big-F16.gguf", (RemotePart("big-F16.gguf", 40 * GB),), "F16"),
    ))
    elsewhere = tiny_gguf(home.parent / "lmstudio" / "pub" / "found-Q4_K_M.gguf", "found")
    other = OtherApp({"lmstudio:pub/found-Q4_K_M.gguf": elsewhere})
    app = FakeApp(DataHome(home), [hub, other, Broken()])
    page, chat = Page(), Chat()
    ctl = ModelsController(app, page, chat=chat)  # type: ignore[arg-type]
    ctl.start(resume=False)
    yield SimpleNamespace(app=app, page=page, chat=chat, ctl=ctl, hub=hub, home=home)
    app.close()


def test_search_results_and_only_the_latest_search_is_shown(setup) -> None:
    s = setup
    s.hub.gate["slow"] = threading.Event()
    stale = s.ctl.search("slow")
    s.ctl.search("tiny", "recent")
    got = wait_for(lambda: s.page.last("models.results"), 5, "results")
    assert got == {"type": "models.results", "query": "tiny", "sort": "recent", "items": [
        {"id": "acme/Tiny-GGUF", "downloads": 10, "likes": 2, "last_modified": "2026-01-02T00:00:00",
         "gated": False}]}
    s.hub.gate["slow"].set()
    stale.result(timeout=5)  # the slow search has finished, and sent nothing
    assert [e["query"] for e in s.page.of("models.results")] == ["tiny"], "the stale search is dropped"


def test_errors_reach_the_page_as_one_line(setup) -> None:
    s = setup
    s.hub.fail = SourceError("cannot reach the Hub at http://x (ConnectError): check the proxy")
    s.ctl.search("tiny", "no-such-sort")
    assert wait_for(lambda: s.page.last("models.error"), 5, "the error") == {
        "type": "models.error", "message": "cannot reach the Hub at http://x (ConnectError): check the proxy"}
    s.hub.fail = RuntimeError("first line\nTraceback (most recent call last):\n  more")
    s.ctl.search("tiny")
    wait_for(lambda: s.page.last("models.error")["message"] == "internal error: first line, see the log",
             5, "one line")
    s.ctl.open_repo("acme/Nope")
    wait_for(lambda: "no such repository" in s.page.last("models.error")["message"], 5, "not found")


def test_repo_files_with_fit_and_the_recommended_one(setup) -> None:
    s = setup
    s.ctl.open_repo("acme/Big-GGUF")
    repo = wait_for(lambda: s.page.last("models.repo"), 5, "the repo")
    assert {k: repo[k] for k in ("id", "summary", "license", "gated")} == {
        "id": "acme/Big-GGUF", "summary": "", "license": "", "gated": False}
    by_name = {f["name"]: f for f in repo["files"]}
    assert by_name["big-Q8_0-00001-of-00002.gguf"] == {
        "name": "big-Q8_0-00001-of-00002.gguf", "quantization": "Q8_0", "size": 3 * GB, "parts": 2,
        "fit": "fits", "recommended": True, "local_name": "acme/Big-GGUF/big-Q8_0-00001-of-00002.gguf"}
    assert by_name["big-Q4_K_M.gguf"]["fit"] == "fits" and not by_name["big-Q4_K_M.gguf"]["recommended"]
    assert by_name["big-Q3_K_M.gguf"]["fit"] == "tight"
    assert by_name["big-F16.gguf"]["fit"] == "too big"


def test_pull_downloads_then_lists_the_model(setup) -> None:
    s = setup
    s.ctl.open_repo("acme/Tiny-GGUF")
    wait_for(lambda: s.page.last("models.repo"), 5, "the repo")
    pushes = s.chat.pushes
    s.ctl.pull("acme/Tiny-GGUF", "tiny-Q4_K_M.gguf")
    done = wait_for(lambda: [d for d in (s.page.last("downloads") or {}).get("items", [])
                             if d["state"] == "done"], 10, "the download")
    name = "acme/Tiny-GGUF/tiny-Q4_K_M.gguf"
    assert done[0]["model"] == name and done[0]["size"] == len(BLOBS["tiny-Q4_K_M.gguf"])
    assert set(done[0]) >= {"id", "source", "repo", "name", "size", "path", "state", "done", "rate", "eta_s",
                            "error", "model"}
    assert (s.home / "models" / name).read_bytes() == BLOBS["tiny-Q4_K_M.gguf"]
    local = wait_for(lambda: s.page.last("models.local"), 5, "the model list")
    assert name in [m["name"] for m in local["items"]]
    assert s.chat.pushes > pushes, "the chat's model picker is told"

    # Finished downloads stay listed until dismissed.
    s.ctl.dismiss(done[0]["id"])
    wait_for(lambda: s.page.last("downloads")["items"] == [], 5, "the dismissed download gone")

    s.ctl.pull("acme/Tiny-GGUF", "tiny-Q4_K_M.gguf")
    wait_for(lambda: "already in models/" in error_of(s.page), 5,
             "a second pull refused at once")


def test_a_hostile_file_name_is_refused(setup) -> None:
    s = setup
    s.ctl.pull("acme/Tiny-GGUF", "../../evil-Q8_0.gguf")
    error = wait_for(lambda: s.page.last("models.error"), 5, "the refusal")
    assert error["message"].startswith("refusing file name") and "\n" not in error["message"]
    assert not list(s.home.rglob("evil*"))
    assert (s.page.last("downloads") or {"items": []})["items"] == []


def test_cancel_a_running_download(setup) -> None:
    s = setup
    s.hub.hold = True
    s.ctl.pull("acme/Tiny-GGUF", "tiny-Q4_K_M.gguf")
    job = wait_for(lambda: [d for d in (s.page.last("downloads") or {}).get("items", [])
                            if d["state"] == "downloading"], 5, "the download running")[0]
    s.ctl.cancel(job["id"])
    wait_for(lambda: [d["state"] for d in s.page.last("downloads")["items"]] == ["cancelled"], 5, "cancelled")
    assert not (s.home / "models" / "acme").exists()


def publisher_done(ctl: ModelsController) -> bool:
    return ctl.publisher_idle.is_set() and not ctl._changed.is_set()


def test_download_updates_are_throttled_for_the_page(setup) -> None:
    s = setup
    s.ctl.publish_every_s = 0.2
    wait_for(lambda: publisher_done(s.ctl), 5, "the publisher idle")
    before = len(s.page.of("downloads"))
    job = SimpleNamespace()
    start = time.monotonic()
    while time.monotonic() - start < 0.5:  # a listener storm, as from several fast downloads
        for listener in s.app.downloads.listeners:
            listener(job)
    wait_for(lambda: publisher_done(s.ctl), 5, "the publisher idle")
    sent = len(s.page.of("downloads")) - before
    assert 1 <= sent <= 5, sent


def test_local_list_default_set_default_and_use(setup) -> None:
    s = setup
    tiny_gguf(s.home / "models" / "a-Q4_K_M.gguf", "a")
    tiny_gguf(s.home / "models" / "b-Q8_0.gguf", "b")
    s.ctl.local()
    items = wait_for(lambda: s.page.last("models.local"), 5, "the list")["items"]
    assert [(m["name"], m["default"], m["loaded"]) for m in items] == [
        ("a-Q4_K_M.gguf", True, False), ("b-Q8_0.gguf", False, False)]
    keys = ("architecture", "parameters", "context", "linked", "parts", "error")
    assert {k: items[0][k] for k in keys} == {
        "architecture": "llama", "parameters": "1M", "context": 2048, "linked": False, "parts": 1,
        "error": None}
    assert set(items[0]) >= {"size", "quantization", "fit", "path"}

    s.ctl.set_default("b-Q8_0.gguf")
    wait_for(lambda: s.page.last("models.notice"), 5, "the notice")
    assert 'default = "b-Q8_0.gguf"' in (s.home / "config.toml").read_text()
    items = s.page.last("models.local")["items"]
    assert [m["default"] for m in items] == [False, True]

    s.ctl.set_default("b")  # a part of a name is not a model's name
    wait_for(lambda: "no model named 'b'" in error_of(s.page), 5,
             "an exact name asked for")

    s.ctl.use("a-Q4_K_M.gguf")
    assert s.chat.loads == ["a-Q4_K_M.gguf"]
    assert {"type": "view", "name": "chat"} in s.page.events


def test_delete_unloads_first_and_cleans_up(setup) -> None:
    s = setup
    path = tiny_gguf(s.home / "models" / "acme" / "Tiny-GGUF" / "t-Q4_K_M.gguf")
    keep = tiny_gguf(s.home / "models" / "keep.gguf")
    name = "acme/Tiny-GGUF/t-Q4_K_M.gguf"
    s.app._engine = engine = Engine(path)  # stands in for a loaded llama.cpp model
    s.ctl.set_default(name)
    wait_for(lambda: s.page.last("models.notice"), 5, "default set")
    s.chat.model = path
    s.ctl.delete(name)
    wait_for(lambda: (s.page.last("models.notice") or {}).get("message") == f"Deleted {name}", 5, "deleted")
    assert engine.unloads == 1 and s.chat.model is None
    assert not (s.home / "models" / "acme").exists(), "the emptied folders go too"
    assert keep.exists()
    assert 'default = ""' in (s.home / "config.toml").read_text()
    assert [m["name"] for m in s.page.last("models.local")["items"]] == ["keep.gguf"]


def test_discover_and_import(setup) -> None:
    s = setup
    s.ctl.discover()
    found = wait_for(lambda: s.page.last("models.found"), 5, "found")["items"]
    assert [(c["name"], c["source"], c["imported"]) for c in found] == [
        ("lmstudio:pub/found-Q4_K_M.gguf", "lmstudio", False)], "a failing source costs only itself"
    s.ctl.import_model("lmstudio:pub/found-Q4_K_M.gguf")
    wait_for(lambda: (s.page.last("models.notice") or {}).get("message") == "Imported found-Q4_K_M.gguf", 5,
             "imported")
    assert (s.home / "models" / "found-Q4_K_M.gguf").is_symlink()
    wait_for(lambda: s.page.last("models.found")["items"][0]["imported"], 5, "marked imported")
    s.ctl.import_model("nobody:knows")
    wait_for(lambda: "no model source knows" in error_of(s.page), 5, "unknown")


def test_tooltip_line_and_short_names() -> None:
    assert short_name("gemma-3-270m-it-Q4_K_M.gguf") == "gemma-3-270m-it-Q4_K_M.gguf"
    long = "bartowski/Llama-3.2-3B-Instruct-abliterated-Q4_K_M.gguf"
    assert short_name(long) == "Llama-3…iterated-Q4_K_M.gguf" and len(short_name(long)) == 28
    item = {"name": long, "state": "downloading", "done": 42, "size": 100, "rate": 12_300_000}
    assert downloads_summary([item]) == "downloading Llama-3…iterated-Q4_K_M.gguf 42 % · 12.3 MB/s"
    queued = {**item, "name": "x.gguf", "state": "queued"}
    assert downloads_summary([item, queued]).endswith("(+1 more)")
    assert downloads_summary([{**item, "state": "verifying"}]).startswith("verifying ")
    assert downloads_summary([{**item, "state": "done"}]) is None


# -- a model's own settings --------------------------------------------------------------

MODEL = "a-Q4_K_M.gguf"
NOTES = "# my own notes: keep them\n"


@pytest.fixture()
def tuned(setup):
    """One model (trained for 2048 tokens) and a config.toml with a person's comments."""
    path = tiny_gguf(setup.home / "models" / MODEL, "a")
    config = setup.home / "config.toml"
    config.write_text(NOTES + config.read_text() + "top_p = 0.9  # tuned by hand\n")
    setup.app.config = Config.load(config)
    return SimpleNamespace(**vars(setup), path=path, config=config)


def settings_after(page: Page, count: int) -> dict:
    """The next models.settings event after the ``count`` already seen."""
    return wait_for(lambda: len(page.of("models.settings")) > count and page.of("models.settings")[-1],
                    5, "the settings")


def test_settings_show_own_and_effective_values(tuned) -> None:
    s = tuned
    s.ctl.settings(MODEL)
    ev = settings_after(s.page, 0)
    assert ev == {"type": "models.settings", "name": MODEL, "settings": {}, "trained_context": 2048,
                  "templates": ["chatml", "gemma", "llama-3"], "effective": {
                      "context_length": 1024, "gpu_layers": -1, "chat_template": "", "flash_attn": "auto",
                      "max_tokens": 24, "temperature": 0.0, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                      "repeat_penalty": 1.0, "speculative": ""}}
    s.ctl.settings("a")  # a part of a name is not a model's name
    wait_for(lambda: "no model named 'a'" in error_of(s.page), 5, "an exact name asked for")


def test_save_writes_the_table_keeps_comments_and_applies_at_once(tuned) -> None:
    s = tuned
    s.ctl.save_settings(MODEL, {"context_length": "512", "temperature": "0", "top_k": 20,
                                "chat_template": " chatml "}, ["max_tokens"])
    ev = settings_after(s.page, 0)
    assert ev["settings"] == {"context_length": 512, "temperature": 0.0, "top_k": 20,
                              "chat_template": "chatml"}
    assert ev["effective"]["context_length"] == 512 and ev["effective"]["max_tokens"] == 24
    notice = wait_for(lambda: s.page.last("models.notice"), 5, "the notice")
    assert notice["message"] == "Saved; they apply from the model's next reply", "not loaded: nothing reloads"
    text = s.config.read_text()
    assert text.startswith(NOTES) and "top_p = 0.9  # tuned by hand" in text
    assert f'[models."{MODEL}"]' in text and "context_length = 512" in text and "temperature = 0.0" in text
    assert Config.load(s.config).model_settings(MODEL) == ev["settings"]
    wait_for(lambda: s.page.last("models.local"), 5, "the list again (its fit follows the context)")

    # No restart: set_settings refreshed app.config, which the engine and the chat read per reply.
    engine = s.app.engine_settings(s.path)
    assert (engine.context_length, engine.chat_template) == (512, "chatml")
    params = s.app.gen_params(s.path)
    assert (params.temperature, params.top_k, params.max_tokens) == (0.0, 20, 24)
    assert s.app.engine_settings(None).context_length == 1024, "other models keep the defaults"

    # An emptied field is unset, as is a key in unset.
    s.ctl.save_settings(MODEL, {"temperature": "  ", "chat_template": ""}, ["top_k"])
    assert settings_after(s.page, 1)["settings"] == {"context_length": 512}
    assert s.app.gen_params(s.path).temperature == 0.0 and s.app.gen_params(s.path).top_k == 40


def test_the_notice_says_when_a_loaded_model_reloads(tuned) -> None:
    s = tuned
    s.app._engine = Engine(s.path)  # stands in for the loaded llama.cpp model
    reloads = "Saved; the model reloads with the new {} on its next reply"
    expected = [({"context_length": "512"}, reloads.format("context")),
                ({"gpu_layers": "0"}, reloads.format("settings")),
                ({"gpu_layers": "0", "temperature": "1.2"}, "Saved; they apply from the model's next reply")]
    for values, message in expected:
        seen = len(s.page.of("models.notice"))
        s.ctl.save_settings(MODEL, values, [])
        wait_for(lambda: len(s.page.of("models.notice")) > seen, 5, "the notice")
        assert s.page.last("models.notice")["message"] == message, values


@pytest.mark.parametrize(("values", "unset", "message"), [
    ({"context_length": "-5"}, [], "Context length must be at least 256 tokens, got '-5'"),
    ({"top_k": "abc"}, [], "Top K should be a whole number, got 'abc'"),
    ({"top_k": 1.5}, [], "Top K should be a whole number, got 1.5"),
    ({"temperature": True}, [], "Temperature should be a number, got True"),
    ({"temperature": "nan"}, [], "Temperature should be a number, got 'nan'"),
    ({"top_p": "1.5"}, [], "Top P must be between 0 and 1, got '1.5'"),
    ({"gpu_layers": "-2"}, [], "GPU layers must be -1 (all), 0 (none) or a number of layers, got '-2'"),
    ({"chat_template": "<script>"}, [], "Chat template '<script>' is not one the engine knows"),
    ({"threads": "4"}, [], "'threads' is not a model setting"),
    ({}, ["hotkey"], "'hotkey' is not a model setting"),
    # One bad value among good ones: nothing at all is written.
    ({"context_length": "512", "temperature": "0.5", "max_tokens": "0"}, [], "Max tokens must be at least 1"),
])
def test_a_bad_value_is_one_line_and_writes_nothing(tuned, values, unset, message) -> None:
    s = tuned
    s.ctl.save_settings(MODEL, {"top_k": "10"}, [])
    settings_after(s.page, 0)
    before, config = s.config.read_bytes(), s.app.config
    s.ctl.save_settings(MODEL, values, unset).result(timeout=5)
    got = error_of(s.page)
    assert got and got.startswith(message) and "\n" not in got, got
    assert s.config.read_bytes() == before and s.app.config is config
    assert len(s.page.of("models.settings")) == 1


def test_reset_removes_the_table(tuned) -> None:
    s = tuned
    s.ctl.save_settings(MODEL, {"context_length": "512", "temperature": "0.3"}, [])
    settings_after(s.page, 0)
    s.ctl.reset_settings(MODEL)
    ev = settings_after(s.page, 1)
    assert ev["settings"] == {} and ev["effective"]["context_length"] == 1024
    assert wait_for(lambda: s.page.last("models.notice")["message"].endswith("again"), 5, "the notice")
    assert s.page.last("models.notice")["message"] == f"{MODEL} follows the defaults again"
    text = s.config.read_text()
    assert f'models."{MODEL}"' not in text and text.startswith(NOTES) and "# tuned by hand" in text
    assert s.app.engine_settings(s.path).context_length == 1024
    assert s.app.gen_params(s.path).temperature == 0.0


def test_the_templates_offered_are_the_engines() -> None:
    from rmm_tray.engine.chat_format import FALLBACKS
    from rmm_tray.models.settings import CHAT_TEMPLATES

    assert set(CHAT_TEMPLATES) == set(FALLBACKS)
